/* serve's OpenAI-compatible gateway: POST /v1/chat/completions and GET /v1/models over
 * the model routes of `--routes FILE` (ROUTER_ROUTES_FILE).
 *
 * A gateway request is a run: a targets route runs a manifest synthesised from the route
 * (one llm step whose agent chain is the targets, with the route's retry, circuit_breaker
 * and timeout), a pipeline route a named manifest of the manifest directory.  Records,
 * traces (which embed the manifest, so `fluxroute replay` works on the trace alone),
 * usage, limits and metrics all come from serve's run path (core/serve/serve_runs.c).
 *
 * Files: gateway_routes.c (the routes file, synthesised manifests), gateway_openai.c
 * (OpenAI request -> normalized request, run outputs -> OpenAI objects, error bodies, as
 * json-c trees), gateway_request.c and gateway_answer.c (the same for the common requests
 * and answers, written as text from text without trees: the hot path), gateway.c (the
 * endpoints, streaming). */
#ifndef FR_CORE_SERVE_GATEWAY_H
#define FR_CORE_SERVE_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "serve/serve.h"

/* ---- gateway_routes.c: the routes file ---- */

typedef struct fr_gw_target {
    char *provider; /* a provider id of --providers */
    char *model;    /* or NULL: the provider's configured model */
} fr_gw_target;

typedef struct fr_gw_route {
    char *name;        /* what clients send as `model` */
    char **namespaces; /* the namespaces whose keys may use it; n_namespaces 0: every one */
    size_t n_namespaces;
    char *pipeline; /* a pipeline route: the manifest's name in the manifest directory */
    fr_gw_target *targets;
    size_t n_targets;
    /* A targets route: its synthesised manifest is head + NAMESPACE + tail. */
    char *head, *tail;
} fr_gw_route;

typedef struct fr_gw_routes {
    fr_gw_route *routes;
    size_t n;
} fr_gw_routes;

/* Reads the routes file at `path` (YAML: routes: [{name, targets: [{provider, model}],
 * retry, circuit_breaker, timeout, namespaces} | {name, pipeline, namespaces}]).  Unknown
 * fields, duplicate names, providers missing from `providers` (the server's; may be NULL)
 * and resilience fields that a manifest would refuse are errors.  Returns the routes
 * (free with fr__gw_routes_free), or NULL with err naming path:line:col and the field. */
fr_gw_routes *fr__gw_routes_load(const char *path, const fr_manifest *providers,
                                 const char *manifest_dir, char *err, size_t errlen);
void fr__gw_routes_free(fr_gw_routes *r);
/* The route named `name`, or NULL.  Borrowed from r. */
const fr_gw_route *fr__gw_route_find(const fr_gw_routes *r, const char *name);
/* 1 when keys of namespace `ns` may use the route. */
int fr__gw_route_allows(const fr_gw_route *rt, const char *ns);
/* The synthesised manifest of a targets route for namespace `ns` (caller frees), or NULL
 * on OOM. */
char *fr__gw_route_manifest(const fr_gw_route *rt, const char *ns);

/* The step whose output answers a pipeline route: the manifest's one sink step (no step
 * depends on it), or -1 (with *sinks the number of sinks) when there is not exactly one. */
int fr__gw_sink_step(const fr_manifest *m, size_t *sinks);

/* ---- gateway_openai.c: the OpenAI shapes ---- */

/* The OpenAI error body {"error": {"message", "type", "param", "code"}} into out, with
 * `status` (the type follows from it).  param may be NULL; code may be NULL. */
void fr__gw_error(fr_reply *out, int status, const char *param, const char *code, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
/* Rewrites a reply of serve's error shape ({"error": {"code", "message"}}) into OpenAI's,
 * keeping its status and headers.  Other replies are left alone. */
void fr__gw_error_from_serve(fr_reply *out);

/* What a chat completion request asks besides the normalized request. */
typedef struct fr_gw_request {
    char model[200];   /* the route name */
    int stream;        /* stream: true */
    int include_usage; /* stream_options.include_usage */
} fr_gw_request;

/* Translates an OpenAI chat completion request (borrowed) into the normalized provider
 * request (include/fluxroute/plugin.h; a new object the caller releases), or NULL with
 * `out` filled: 400 naming the field (`param`) for anything unknown, unsupported or
 * malformed. */
json_object *fr__gw_translate_request(json_object *body, fr_gw_request *rq, fr_reply *out);

/* A chat.completion object from a normalized response `resp` (borrowed: the llm step's
 * output {text, tool_calls, finish_reason, usage, model}).  `model` is the route name,
 * the response's `model` (as in chunks).  A new object. */
json_object *fr__gw_completion(const char *run_id, long long created, const char *model,
                               json_object *resp);
/* One chat.completion.chunk with `delta` (taken) and finish_reason (NULL: null).  A new
 * object. */
json_object *fr__gw_chunk(const char *run_id, long long created, const char *model,
                          json_object *delta, const char *finish_reason);
/* The OpenAI tool_calls array of a normalized response's tool_calls (borrowed; with an
 * index per call when `indexed`, as chunks have them), or NULL when there are none. */
json_object *fr__gw_tool_calls(json_object *resp, int indexed);
/* The OpenAI usage object of a normalized usage (borrowed), or NULL when unknown. */
json_object *fr__gw_usage(json_object *usage);
/* OpenAI's finish_reason for a normalized one (NULL: "stop"). */
const char *fr__gw_finish_reason(const char *normalized);

/* ---- gateway_request.c: the common requests translated from their text ---- */

/* The normalized request of the chat completion body body[0..len), written as the tree
 * fr__gw_translate_request builds is written (the run's input), without parsing the body:
 * for requests of model, messages (system, developer, user and assistant roles with
 * string content), stream, stream_options, max_tokens or max_completion_tokens,
 * temperature, top_p and user, all valid.  Returns 0 with *rq and *input (the caller
 * frees input->data), or -1 (nothing to free) when the tree way must translate the body
 * or refuse it: other fields, other messages, an invalid body or value. */
int fr__gw_translate_text(const char *body, size_t len, fr_gw_request *rq, fr_bytebuf *input);

/* A request fr__gw_translate_text translated. */
typedef struct fr_gw_text {
    fr_gw_request rq;
    const char *input; /* the normalized request, JSON text (borrowed) */
} fr_gw_text;

/* ---- gateway_answer.c: the same objects written as text, without trees ---- */

/* What the answer takes from a normalized response (an llm step's output text), read
 * without a tree.  Pointers borrow the output. */
typedef struct fr_gw_answer {
    const char *text; /* `text`'s string token (quotes and escapes as in the output), or NULL
                       * when it is no string (the answer's content is null) */
    size_t text_len;
    const char *finish; /* OpenAI's finish_reason (static) */
    int has_usage;      /* usage.input_tokens and usage.output_tokens are integers */
    int64_t input_tokens, output_tokens, total_tokens;
} fr_gw_answer;

/* Reads output[0..len).  Returns 0, or -1 when the tree way must answer: the output is
 * not one JSON object, has tool calls, escaped member names or a finish_reason with
 * escapes, or token counts past int64. */
int fr__gw_answer_scan(const char *output, size_t len, fr_gw_answer *a);

/* Appends the chat.completion of `a` (what fr__gw_completion's object is written as) to
 * b.  Returns 0, or -1 on OOM (b->oom). */
int fr__gw_completion_put(fr_bytebuf *b, const char *run_id, long long created, const char *model,
                          const fr_gw_answer *a);

/* A chunk's delta. */
typedef enum fr_gw_delta_kind {
    FR_GW_DELTA_NONE,  /* no choice: the last chunk, with `answer`'s usage (NULL: null) */
    FR_GW_DELTA_ROLE,  /* {"role": "assistant", "content": "", "refusal": null} */
    FR_GW_DELTA_BYTES, /* {"content": the `len` bytes at `bytes`} */
    FR_GW_DELTA_TEXT,  /* {"content": `answer`'s text} */
    FR_GW_DELTA_JSON,  /* the `len` bytes at `bytes`: a delta object's JSON text */
    FR_GW_DELTA_EMPTY  /* {} */
} fr_gw_delta_kind;

typedef struct fr_gw_delta {
    fr_gw_delta_kind kind;
    const char *bytes; /* borrowed */
    size_t len;
    const fr_gw_answer *answer; /* borrowed */
} fr_gw_delta;

/* What every chunk of one completion opens with ({"id", "object", "created", "model",
 * "system_fingerprint" and a comma), written once per completion (e->text: the caller
 * frees it).  Returns 0, or -1 on OOM. */
typedef struct fr_gw_envelope {
    char *text;
    size_t len;
} fr_gw_envelope;
int fr__gw_chunk_envelope(fr_gw_envelope *e, const char *run_id, long long created,
                          const char *model);

/* Appends one chat.completion.chunk (what fr__gw_chunk's object is written as) of the
 * completion of envelope `e`, with delta `d` and `finish_reason` (NULL: null), to b.
 * Returns 0, or -1 on OOM (b->oom). */
int fr__gw_chunk_put(fr_bytebuf *b, const fr_gw_envelope *e, const fr_gw_delta *d,
                     const char *finish_reason);

/* ---- gateway.c: the endpoints ---- */

typedef struct fr_gateway fr_gateway;

/* The gateway over routes file `path` (NULL: none; then every model is unknown).  Returns
 * NULL with err set when the file cannot be read or is invalid. */
fr_gateway *fr__gateway_new(const char *path, fr_runs *runs, const fr_manifest *providers,
                            const char *manifest_dir, char *err, size_t errlen);
/* SIGHUP: reads the file again; on error keeps the routes it has and returns -1 with err. */
int fr__gateway_reload(fr_gateway *g, char *err, size_t errlen);
const char *fr__gateway_path(const fr_gateway *g);
void fr__gateway_free(fr_gateway *g);

/* 1 when url is one of the gateway's endpoints (its errors then take OpenAI's shape). */
int fr__gateway_is_url(const char *url);
/* Serves a gateway endpoint for an identified caller (`body`: the parsed JSON body of a
 * POST /v1/chat/completions, borrowed; NULL otherwise, or when `pre` is its translation
 * from its text, borrowed).  Fills `out` (or defers it through `defer`). */
void fr__gateway_handle(fr_gateway *g, const fr_identity *who, const char *url, const char *method,
                        json_object *body, const fr_gw_text *pre, fr_deferred *defer,
                        fr_reply *out);

#endif
