/* Effects: everything a plugin learns from the outside during an attempt (clock reads,
 * sleeps, random draws, HTTP exchanges, provider calls, cancellation checks) and the
 * engine's decisions that depend on timing or shared state (breaker admissions, late
 * results, hung or killed plugins).  When a run is recorded, each attempt keeps its
 * effects in call order; when a trace is replayed, they are served back from it.
 *
 * Secrets: credentials read through host->secret_env and values of options declared
 * secret are remembered here and scrubbed from everything a trace writes.
 * Thread-safety: recording into one call is single-threaded; the secret registry is
 * locked. */
#ifndef FR_CORE_EFFECTS_H
#define FR_CORE_EFFECTS_H

#include <json-c/json.h>

#include <fluxroute/plugin.h>

/* A new effect object {"kind": kind}. */
json_object *fr__effect_new(const char *kind);

/* Appends `e` to the call's effect list when the run is recorded (takes ownership;
 * releases it otherwise). */
void fr__effect_add(fr_call *call, json_object *e);

/* Status codes by name in traces ("OK", "TIMEOUT"), and back.  Unknown names give
 * FR_E_INVALID. */
json_object *fr__status_json(fr_status st);
fr_status fr__status_from_json(json_object *v);

/* The JSON recorded for an HTTP request: method, url, headers after the secret ones,
 * the number of secret headers, body.  Caller owns it. */
json_object *fr__http_request_json(const fr_http_request *req);

/* Remembers a secret value (copied; values shorter than 4 bytes are ignored). */
void fr__secret_remember(const char *value);

/* Replaces every remembered secret in `text` with "[REDACTED]".  Returns a new string
 * (caller frees) or NULL when nothing needed replacing. */
char *fr__secret_scrub(const char *text);

/* Scrubs every string (keys and values) of a JSON tree in place. */
void fr__secret_scrub_json(json_object *o);

/* Forgets all secrets (tests). */
void fr__secret_reset(void);

#endif
