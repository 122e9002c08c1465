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

/* The request field a provider failure names by the unsupported-field convention of
 * plugin.h (`complete`): when `message` (a call's error, such as `provider "p":
 * unsupported field 'seed': the anthropic Messages API has no seed`, or a plugin's own
 * message) holds "unsupported field 'NAME': ", copies NAME into name (size bytes, cut to
 * fit) and returns 1; else returns 0 with name "".  For the gateway's `param`. */
int fr__unsupported_field(const char *message, char *name, size_t size);

#endif /* FR_HOST_PROVIDER_FIELDS_H */
