/* provider_fields: which fields of a normalized provider request (include/fluxroute/
 * plugin.h, `complete`) need a provider plugin of a given ABI minor, so that the host
 * never hands a field to a plugin built before it existed (the plugin would drop it
 * silently).  Stateless and thread-safe. */
#ifndef FR_HOST_PROVIDER_FIELDS_H
#define FR_HOST_PROVIDER_FIELDS_H

#include <stddef.h>

/* The first field of `request` (JSON text of len bytes, already checked valid) that a
 * provider plugin of ABI minor `minor` cannot take: ABI 1.2 added top_p, seed,
 * tool_choice, user (present and not null), the developer role (named
 * "messages[N].role"), content parts ("messages[N].content") and response_format
 * json_schema ("response_format").  Writes its path into field (size bytes) and
 * returns 1; returns 0 when the plugin can take them all (always for minor >= 2). */
int fr__provider_field_too_new(const char *request, size_t len, unsigned minor, char *field,
                               size_t size);

#endif /* FR_HOST_PROVIDER_FIELDS_H */
