/* The gateway's endpoints (gateway.h): POST /v1/chat/completions and GET /v1/models.
 *
 * A completion is a run (fr__runs_gateway), answered through `deliver`: on the request
 * thread for a quick whole answer, else from the run's own thread.  A
 * streamed one holds its answer back until the first token: until then nothing has gone
 * to the client, so a failing target may still fall back to the next one, and a run that
 * fails without a token is answered with an HTTP error.  From the first token on the
 * answer is a stream of chat.completion.chunk objects; the synthesised manifest sets
 * router.stream_restart: false, so a vendor failing mid-stream ends the step (no retry,
 * no fallback) and the stream gets `data: {"error": ...}` instead of a clean [DONE]. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/str.h"
#include "host/provider_fields.h"
#include "observe/observe.h"
#include "serve/gateway.h"
#include "serve/serve_sse.h"

struct fr_gateway {
    char *path; /* the routes file, or NULL */
    fr_runs *runs;
    const fr_manifest *providers;
    const char *manifest_dir;
    pthread_rwlock_t lock; /* over routes: SIGHUP swaps them */
    fr_gw_routes *routes;
};

fr_gateway *fr__gateway_new(const char *path, fr_runs *runs, const fr_manifest *providers,
                            const char *manifest_dir, char *err, size_t errlen)
{
    fr_gateway *g = calloc(1, sizeof *g);
    if (!g || (path && !(g->path = strdup(path)))) {
        snprintf(err, errlen, "out of memory");
        free(g);
        return NULL;
    }
    g->runs = runs;
    g->providers = providers;
    g->manifest_dir = manifest_dir;
    pthread_rwlock_init(&g->lock, NULL);
    if (path && !(g->routes = fr__gw_routes_load(path, providers, manifest_dir, err, errlen))) {
        fr__gateway_free(g);
        return NULL;
    }
    return g;
}

int fr__gateway_reload(fr_gateway *g, char *err, size_t errlen)
{
    if (!g || !g->path)
        return 0;
    fr_gw_routes *fresh = fr__gw_routes_load(g->path, g->providers, g->manifest_dir, err, errlen);
    if (!fresh)
        return -1;
    pthread_rwlock_wrlock(&g->lock);
    fr_gw_routes *old = g->routes;
    g->routes = fresh;
    pthread_rwlock_unlock(&g->lock);
    fr__gw_routes_free(old);
    return 0;
}

const char *fr__gateway_path(const fr_gateway *g)
{
    return g ? g->path : NULL;
}

void fr__gateway_free(fr_gateway *g)
{
    if (!g)
        return;
    fr__gw_routes_free(g->routes);
    pthread_rwlock_destroy(&g->lock);
    free(g->path);
    free(g);
}

int fr__gateway_is_url(const char *url)
{
    return strcmp(url, "/v1/chat/completions") == 0 || strcmp(url, "/v1/models") == 0;
}

/* ---- GET /v1/models ---------------------------------------------------------------------- */

static void models(fr_gateway *g, const fr_identity *who, fr_reply *out)
{
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    json_object_object_add(o, "object", json_object_new_string("list"));
    pthread_rwlock_rdlock(&g->lock);
    for (size_t i = 0; g->routes && i < g->routes->n; i++) {
        const fr_gw_route *rt = &g->routes->routes[i];
        if (!fr__gw_route_allows(rt, who->namespace_))
            continue;
        json_object *m = json_object_new_object();
        json_object_object_add(m, "id", json_object_new_string(rt->name));
        json_object_object_add(m, "object", json_object_new_string("model"));
        json_object_object_add(m, "created", json_object_new_int64(0));
        json_object_object_add(m, "owned_by", json_object_new_string("fluxroute"));
        json_object_array_add(list, m);
    }
    pthread_rwlock_unlock(&g->lock);
    json_object_object_add(o, "data", list);
    fr__reply_json(out, 200, o);
}

/* ---- one completion ---------------------------------------------------------------------- */

#define MAX_TAIL 4 /* a stream's last frames: text, tool calls, finish, usage */

typedef struct completion {
    char route[200];
    char run_id[40];
    long long created;
    int stream, include_usage;
    int64_t t0; /* the run's start (monotonic), for a stream's plugin time */
    fr_deferred *defer;
    fr_sse *sse;          /* once the first token went out */
    int streamed;         /* tokens went out (a targets route's text) */
    fr_gw_envelope env;   /* a stream's chunks' opening (owned), made at its first chunk */
    char *tail[MAX_TAIL]; /* a stream's last frames (owned), written at the run's end */
    size_t n_tail;
    int stream_fail; /* the stream ends with an error frame */
} completion;

/* One chunk of the completion into b: 0, or -1 on OOM. */
static int chunk(completion *c, fr_bytebuf *b, const fr_gw_delta *d, const char *finish_reason)
{
    if (!c->env.text &&
        fr__gw_chunk_envelope(&c->env, c->run_id, c->created, c->route) != 0) /* once */
        return -1;
    return fr__gw_chunk_put(b, &c->env, d, finish_reason);
}

/* One chunk to the stream.  Nothing goes out when memory runs out: the client sees the
 * stream end without [DONE]. */
static void send_chunk(completion *c, const fr_gw_delta *d)
{
    fr_bytebuf b = {0};
    if (chunk(c, &b, d, NULL) == 0)
        fr__sse_event(c->sse, NULL, b.data);
    free(b.data);
}

/* A last frame: a chunk, written now and sent at the end. */
static void tail_chunk(completion *c, const fr_gw_delta *d, const char *finish_reason)
{
    fr_bytebuf b = {0};
    if (c->n_tail < MAX_TAIL && chunk(c, &b, d, finish_reason) == 0) {
        c->tail[c->n_tail++] = b.data;
        return;
    }
    free(b.data);
}

/* ... or an object (released). */
static void tail_object(completion *c, json_object *o)
{
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = text && c->n_tail < MAX_TAIL ? strdup(text) : NULL;
    if (copy)
        c->tail[c->n_tail++] = copy;
    json_object_put(o);
}

/* Opens the stream: the deferred reply becomes the SSE response, with the role chunk. */
static int open_stream(completion *c)
{
    fr_reply reply = {.route = "/v1/chat/completions"};
    c->sse = fr__sse_open(c->defer->conn, &reply.stream);
    if (!c->sse)
        return -1;
    reply.status = 200;
    reply.content_type = "text/event-stream";
    reply.plugin_us = fr__mono_us() - c->t0; /* waiting on the vendor, mostly */
    fr__str_copy(reply.run_id, sizeof reply.run_id, c->run_id);
    send_chunk(c, &(fr_gw_delta){.kind = FR_GW_DELTA_ROLE});
    c->defer->complete(c->defer, &reply);
    return 0;
}

static void on_token(void *ud, const char *step, const char *text, size_t len)
{
    (void)step;
    completion *c = ud;
    if (!len || (!c->sse && open_stream(c) != 0))
        return;
    c->streamed = 1;
    send_chunk(c, &(fr_gw_delta){.kind = FR_GW_DELTA_BYTES, .bytes = text, .len = len});
}

/* The HTTP status of a failed run's error class (OpenAI's statuses). */
static int status_of(fr_status st, const char **code)
{
    switch (fr_status_class(st)) {
    case FR_CLASS_BAD_REQUEST:
    case FR_CLASS_CONTEXT_WINDOW:
    case FR_CLASS_CONTENT_POLICY: *code = fr_class_name(fr_status_class(st)); return 400;
    case FR_CLASS_RATE_LIMITED:
    case FR_CLASS_BUDGET_EXCEEDED: *code = "rate_limit_exceeded"; return 429;
    case FR_CLASS_CIRCUIT_OPEN:
    case FR_CLASS_OVERLOADED:
    case FR_CLASS_UNAVAILABLE:
    case FR_CLASS_STATE_UNAVAILABLE: *code = fr_class_name(fr_status_class(st)); return 503;
    default: *code = fr_class_name(fr_status_class(st)); return 500;
    }
}

/* The step whose output answers a finished run: its manifest's one sink step (NULL with
 * `why` set when there is not exactly one; NULL when it has no output). */
static const fr_step_result *answer_step(const fr_pipeline *p, const fr_run_result *res, char *why,
                                         size_t whylen)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    size_t sinks;
    int step = fr__gw_sink_step(m, &sinks);
    if (step < 0) {
        snprintf(why, whylen,
                 "manifest \"%s\" has %zu sink steps; a pipeline route needs exactly one (its "
                 "answer)",
                 m->path, sinks);
        return NULL;
    }
    const fr_step_result *sr = &res->steps[step];
    return sr->state == FR_STEP_SUCCEEDED && sr->output ? sr : NULL;
}

/* A pipeline's usage: the tokens of every provider call of the run (a targets route's is
 * its answer's own). */
static void run_tokens(const fr_run_result *res, int64_t *in, int64_t *outt)
{
    *in = *outt = 0;
    for (size_t i = 0; i < res->n_steps; i++)
        for (size_t a = 0; a < res->steps[i].n_attempts; a++)
            for (size_t k = 0; k < res->steps[i].attempts[a].n_provider_calls; k++) {
                *in += res->steps[i].attempts[a].provider_calls[k].input_tokens;
                *outt += res->steps[i].attempts[a].provider_calls[k].output_tokens;
            }
}

/* The normalized response of step result `sr` as a tree, for what fr__gw_answer_scan
 * leaves to it: an output that is no object is the text. */
static json_object *answer_tree(const fr_manifest *m, const fr_run_result *res,
                                const fr_step_result *sr)
{
    json_object *o = json_tokener_parse(sr->output);
    if (!json_object_is_type(o, json_type_object)) {
        json_object *w = json_object_new_object();
        json_object_object_add(w, "text",
                               json_object_is_type(o, json_type_string)
                                   ? json_object_get(o)
                                   : json_object_new_string(sr->output));
        json_object_put(o);
        o = w;
    }
    if (m->n_steps > 1) {
        int64_t in, outt;
        run_tokens(res, &in, &outt);
        json_object *u = json_object_new_object();
        json_object_object_add(u, "input_tokens", json_object_new_int64(in));
        json_object_object_add(u, "output_tokens", json_object_new_int64(outt));
        json_object_object_add(o, "usage", u);
    }
    return o;
}

/* The error of a failed run: the first failed step's status and message, and the wait
 * its last attempt was asked for (a vendor's Retry-After; 0 when none). */
static void run_error(const fr_run_result *res, fr_status *st, const char **msg, int64_t *retry_us)
{
    *st = FR_E_AGENT;
    *msg = "the run failed";
    *retry_us = 0;
    for (size_t i = 0; i < res->n_steps; i++)
        if (res->steps[i].state == FR_STEP_FAILED) {
            const fr_step_result *sr = &res->steps[i];
            *st = sr->status;
            *msg = sr->message ? sr->message : fr_strerror(*st);
            if (sr->n_attempts)
                *retry_us = sr->attempts[sr->n_attempts - 1].retry_after_us;
            return;
        }
}

/* A run without an answer: an HTTP error, or an error frame when bytes went out. */
static void failed(completion *c, fr_status st, const fr_run_result *res, const char *why,
                   fr_reply *reply)
{
    fr_status fst = st;
    const char *msg = fr_strerror(st), *code = NULL;
    int64_t retry_us = 0;
    if (st == FR_OK)
        run_error(res, &fst, &msg, &retry_us);
    if (why[0])
        fst = FR_E_CONFIG, msg = why;
    int status = status_of(fst, &code);
    if (c->sse) {
        /* Bytes went out: no clean end, and no other answer after them. */
        json_object *o = json_object_new_object(), *e = json_object_new_object();
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_object_add(e, "type", json_object_new_string("server_error"));
        json_object_object_add(e, "param", NULL);
        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(o, "error", e);
        tail_object(c, o);
        c->stream_fail = 1;
    } else {
        /* A field the provider cannot take (plugin.h's convention) is the param. */
        char param[128];
        int unsupported = status == 400 && fr__unsupported_field(msg, param, sizeof param);
        if (unsupported)
            code = "unsupported_parameter";
        fr__gw_error(reply, status, unsupported ? param : NULL, code, "route \"%s\": %s", c->route,
                     msg);
        /* The vendor's Retry-After when it gave one (whole seconds, at least 1). */
        if (status == 429 || (status == 503 && retry_us > 0))
            reply->retry_after = retry_us > 0 ? (int)((retry_us + 999999) / 1000000) : 1;
        fr__str_copy(reply->run_id, sizeof reply->run_id, c->run_id);
    }
    fr__metrics_gateway_request(c->route, c->sse ? 200 : status);
}

/* A stream's end from the answer's tree: what did not stream (a pipeline's answer, tool
 * calls), the finish reason and the usage. */
static void stream_end_tree(completion *c, json_object *ans)
{
    json_object *text = NULL, *fin = NULL, *tcs = fr__gw_tool_calls(ans, 1);
    if (!c->streamed && json_object_object_get_ex(ans, "text", &text) &&
        json_object_is_type(text, json_type_string) && json_object_get_string_len(text)) {
        json_object *delta = json_object_new_object();
        json_object_object_add(delta, "content", json_object_get(text));
        tail_object(c, fr__gw_chunk(c->run_id, c->created, c->route, delta, NULL));
    }
    if (tcs) {
        json_object *delta = json_object_new_object();
        json_object_object_add(delta, "tool_calls", tcs);
        tail_object(c, fr__gw_chunk(c->run_id, c->created, c->route, delta, NULL));
    }
    json_object_object_get_ex(ans, "finish_reason", &fin);
    const char *finish = tcs ? "tool_calls"
                             : fr__gw_finish_reason(json_object_is_type(fin, json_type_string)
                                                        ? json_object_get_string(fin)
                                                        : NULL);
    tail_object(c, fr__gw_chunk(c->run_id, c->created, c->route, json_object_new_object(), finish));
    if (c->include_usage) {
        json_object *last = fr__gw_chunk(c->run_id, c->created, c->route, NULL, NULL), *u;
        json_object_object_add(
            last, "usage", json_object_object_get_ex(ans, "usage", &u) ? fr__gw_usage(u) : NULL);
        tail_object(c, last);
    }
}

/* ... and from the answer read without a tree (the same frames). */
static void stream_end(completion *c, const fr_gw_answer *a)
{
    if (!c->streamed && a->text && a->text_len > 2) /* a non-empty string */
        tail_chunk(c, &(fr_gw_delta){.kind = FR_GW_DELTA_TEXT, .answer = a}, NULL);
    tail_chunk(c, &(fr_gw_delta){.kind = FR_GW_DELTA_EMPTY}, a->finish);
    if (c->include_usage)
        tail_chunk(c, &(fr_gw_delta){.kind = FR_GW_DELTA_NONE, .answer = a}, NULL);
}

static void on_end(void *ud, const char *run_id, fr_status st, const fr_pipeline *p,
                   const fr_run_result *res, int64_t plugin_us, fr_reply *reply)
{
    (void)run_id;
    completion *c = ud;
    reply->plugin_us = plugin_us;
    fr__str_copy(reply->run_id, sizeof reply->run_id, c->run_id);
    char why[300] = "";
    const fr_step_result *sr = st == FR_OK && res->status == FR_RUN_SUCCEEDED
                                   ? answer_step(p, res, why, sizeof why)
                                   : NULL;
    if (!sr) {
        failed(c, st, res, why, reply);
        return;
    }
    fr__metrics_gateway_request(c->route, 200);
    /* The answer from the output's text when it can be read so (the common case: no
     * tree is built), else from its tree. */
    const fr_manifest *m = fr__pipeline_manifest(p);
    fr_gw_answer a;
    json_object *ans = NULL;
    if (fr__gw_answer_scan(sr->output, strlen(sr->output), &a) != 0)
        ans = answer_tree(m, res, sr);
    else if (m->n_steps > 1) { /* a pipeline: every call's tokens */
        run_tokens(res, &a.input_tokens, &a.output_tokens);
        a.has_usage = 1;
        a.total_tokens = a.input_tokens + a.output_tokens;
    }
    if (!c->stream) {
        if (ans) {
            fr__reply_json(reply, 200, fr__gw_completion(c->run_id, c->created, c->route, ans));
            json_object_put(ans);
            return;
        }
        fr_bytebuf b = {0};
        if (fr__gw_completion_put(&b, c->run_id, c->created, c->route, &a) != 0) {
            free(b.data);
            fr__gw_error(reply, 500, NULL, "internal", "out of memory");
            return;
        }
        reply->status = 200;
        reply->body = b.data;
        reply->body_len = b.len;
        return;
    }
    /* A stream: its last frames; [DONE] follows in deliver. */
    if (c->sse || open_stream(c) == 0) {
        if (ans)
            stream_end_tree(c, ans);
        else
            stream_end(c, &a);
    }
    json_object_put(ans);
}

static void deliver(void *ud, fr_deferred *d, fr_reply *reply)
{
    completion *c = ud;
    if (!c->sse) {
        d->complete(d, reply);
    } else {
        free(reply->body); /* the stream answered already */
        for (size_t i = 0; i < c->n_tail; i++)
            fr__sse_event(c->sse, NULL, c->tail[i]);
        if (!c->stream_fail)
            fr__sse_event(c->sse, NULL, "[DONE]");
        fr__sse_close(c->sse);
    }
    for (size_t i = 0; i < c->n_tail; i++)
        free(c->tail[i]);
    free(c->env.text);
    free(c);
}

/* ---- POST /v1/chat/completions ----------------------------------------------------------- */

static void completions(fr_gateway *g, const fr_identity *who, json_object *body,
                        const fr_gw_text *pre, fr_deferred *defer, fr_reply *out)
{
    /* The request translated from its text (the common ones), else from its tree. */
    fr_gw_request tree_rq;
    const fr_gw_request *rq = pre ? &pre->rq : &tree_rq;
    json_object *req = pre ? NULL : fr__gw_translate_request(body, &tree_rq, out);
    if (!pre && !req)
        return;
    char *yaml = NULL, *pipeline = NULL;
    pthread_rwlock_rdlock(&g->lock);
    const fr_gw_route *rt = fr__gw_route_find(g->routes, rq->model);
    int known = rt && fr__gw_route_allows(rt, who->namespace_);
    if (known && rt->pipeline)
        pipeline = strdup(rt->pipeline);
    else if (known)
        yaml = fr__gw_route_manifest(rt, who->namespace_);
    pthread_rwlock_unlock(&g->lock);
    completion *c = known ? calloc(1, sizeof *c) : NULL;
    char label[220];
    size_t label_len = 0;
    fr__str_append(label, sizeof label, &label_len, "route:");
    fr__str_append(label, sizeof label, &label_len, rq->model);
    const char *input = pre ? pre->input
                            : json_object_to_json_string_ext(
                                  req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!known) {
        /* The same answer for a route that does not exist and one of other namespaces. */
        fr__gw_error(out, 404, "model", "model_not_found",
                     "The model '%s' does not exist or you do not have access to it (GET "
                     "/v1/models lists yours)",
                     rq->model);
        fr__metrics_gateway_request("other", 404);
    } else if (!c || (!yaml && !pipeline) || !input) {
        fr__gw_error(out, 500, NULL, "internal", "out of memory");
    } else {
        fr__str_copy(c->route, sizeof c->route, rq->model);
        c->stream = rq->stream;
        c->include_usage = rq->include_usage;
        c->created = (long long)(fr__wall_us() / 1000000);
        c->t0 = fr__mono_us();
        c->defer = defer;
        /* A pipeline's steps stream for themselves: its answer goes out at its end. */
        fr_gateway_exec ge = {.label = label,
                              .manifest = pipeline,
                              .yaml = yaml,
                              .input = input,
                              .stream = rq->stream,
                              .on_token = rq->stream && !pipeline ? on_token : NULL,
                              .on_end = on_end,
                              .deliver = deliver,
                              .ud = c};
        if (fr__runs_gateway(g->runs, who, &ge, defer, c->run_id, sizeof c->run_id, out) == 0)
            c = NULL; /* the run's now */
        else {
            fr__gw_error_from_serve(out);
            fr__metrics_gateway_request(rq->model, out->status);
        }
    }
    free(c);
    free(yaml);
    free(pipeline);
    json_object_put(req);
}

void fr__gateway_handle(fr_gateway *g, const fr_identity *who, const char *url, const char *method,
                        json_object *body, const fr_gw_text *pre, fr_deferred *defer, fr_reply *out)
{
    int chat = strcmp(url, "/v1/chat/completions") == 0;
    out->route = chat ? "/v1/chat/completions" : "/v1/models";
    const char *want = chat ? "POST" : "GET";
    if (strcmp(method, want) != 0) {
        out->allow = chat ? "POST" : "GET";
        fr__gw_error(out, 405, NULL, "method_not_allowed", "%s is not allowed here; use %s", method,
                     want);
        return;
    }
    if (!fr__auth_allows(who->role, FR_ACTION_RUN)) {
        fr__gw_error(out, 403, NULL, "forbidden", "role %s may not use the gateway's models",
                     fr__role_name(who->role));
        return;
    }
    if (chat)
        completions(g, who, body, pre, defer, out);
    else
        models(g, who, out);
}
