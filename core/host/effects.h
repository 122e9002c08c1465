/* Effects: everything a plugin learns from the outside during an attempt (clock reads,
 * sleeps, random draws, HTTP exchanges, provider calls, cancellation checks) and the
 * engine's decisions that depend on timing or shared state (breaker admissions, late
 * results, hung or killed plugins).  When a run is recorded, each attempt keeps its
 * effects in call order; when a trace is replayed, they are served back from it.
 *
 * Secrets (core/base/secret.h): credentials read through host->secret_env and values of
 * options declared secret are remembered and scrubbed from everything a trace writes.
 * Thread-safety: recording into one call is single-threaded. */
#ifndef FR_CORE_EFFECTS_H
#define FR_CORE_EFFECTS_H

#include <json-c/json.h>

#include <fluxroute/plugin.h>

#include "base/secret.h"

/* A new effect object {"kind": kind}. */
json_object *fr__effect_new(const char *kind);

/* Adds member `key` to an object that does not have it yet (an effect being built):
 * json_object_object_add without the look-up for an existing key and without copying
 * `key`, which must be a string literal.  Takes ownership of `value`. */
void fr__effect_put(json_object *o, const char *key, json_object *value);

/* Appends `e` to the call's effect list when the run is recorded (takes ownership;
 * releases it otherwise). */
void fr__effect_add(fr_call *call, json_object *e);

/* The effect of a breaker admission: {"kind": "breaker", "breaker", "admission": allow |
 * probe | reject | unavailable, and for unavailable "error": why}.  `admission` is an
 * fr_admission (host/breaker.h); fr__replay_admission reads it back.  Caller owns it. */
json_object *fr__breaker_effect(const char *breaker, int admission, const char *why);

/* Status codes by name in traces ("OK", "TIMEOUT"), and back.  Unknown names give
 * FR_E_INVALID. */
json_object *fr__status_json(fr_status st);
fr_status fr__status_from_json(json_object *v);

/* The JSON recorded for an HTTP request: method, url, headers after the secret ones,
 * the number of secret headers, body.  Caller owns it. */
json_object *fr__http_request_json(const fr_http_request *req);

#endif
