/* Secrets: credentials plugins read (host->secret_env) and values of options declared
 * secret are remembered here, process-wide, and scrubbed from everything FluxRoute
 * writes: traces, log lines, audit lines, spans.  Thread-safe (one lock). */
#ifndef FR_CORE_SECRET_H
#define FR_CORE_SECRET_H

#include <json-c/json.h>

/* Remembers a secret value (copied; values shorter than 4 bytes are ignored). */
void fr__secret_remember(const char *value);

/* A number that changes whenever the secrets remembered do: a text scrubbed under the same
 * generation needs no scrubbing again. */
size_t fr__secret_generation(void);

/* Replaces every remembered secret in `text` with "[REDACTED]".  Returns a new string
 * (caller frees) or NULL when nothing needed replacing. */
char *fr__secret_scrub(const char *text);

/* Scrubs every string (keys and values) of a JSON tree in place. */
void fr__secret_scrub_json(json_object *o);

/* Whether a remembered secret may show in the JSON text json[0..len) (valid JSON,
 * NUL-terminated at len): 1 when one is in a string of it once decoded, or anywhere in the
 * text as it is; else 0, and then scrubbing every string of the document
 * (fr__secret_scrub_json on its tree) would change nothing.  A pass over the text per
 * secret; only strings with escapes that could hide one (\u, \/) are decoded. */
int fr__secret_in_json(const char *json, size_t len);

/* Forgets all secrets (tests). */
void fr__secret_reset(void);

#endif
