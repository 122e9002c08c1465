/* The host's observability hooks: provider calls (metrics, the attempt's log line, client
 * spans) and the traceparent of outgoing HTTP requests (core/observe/ has the sinks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/call.h"
#include "host/call_observe.h"
#include "observe/obs_impl.h"

static int traced_call(const fr_call *call)
{
    return call->obs && *call->obs && (*call->obs)->traced;
}

fr_obs_provider_token fr__obs_provider_begin(fr_call *call)
{
    fr_obs_provider_token t = {.t0_us = fr__mono_us()};
    if (traced_call(call) && !call->replay) {
        t.prev_span_id = fr__obs_tl.provider_span;
        t.span_id = fr__os_random();
        fr__obs_tl.provider_span = t.span_id;
    }
    return t;
}

static void copy_n(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void fr__obs_provider_end(fr_call *call, const fr_obs_provider_token *tok, const char *provider_id,
                          const char *system, fr_status st, const fr_obs_usage *usage)
{
    if (tok->span_id)
        fr__obs_tl.provider_span = tok->prev_span_id;
    if (call->replay)
        return; /* a replay calls no provider: nothing to count */
    int64_t latency = fr__mono_us() - tok->t0_us;
    fr_obs_usage u = {.input_tokens = -1, .output_tokens = -1};
    if (st == FR_OK && usage)
        u = *usage;
    const char *model = u.model[0] ? u.model : "unknown";
    fr_error_class cls = st == FR_OK ? FR_CLASS_NONE : fr_status_class(st);
    /* The provider metrics have no namespace label; their model and provider labels
     * still count against the run's namespace. */
    const char *ns = call->obs && *call->obs ? (*call->obs)->ns : NULL;
    const char *rl[] = {provider_id, model, st == FR_OK ? "succeeded" : "failed",
                        fr_class_name(cls)};
    fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_REQUESTS, ns, rl), 1);
    const char *ll[] = {provider_id, model};
    fr__metric_observe_us(fr__metric_series_in(FR_M_PROVIDER_LATENCY, ns, ll), latency);
    if (u.input_tokens > 0) {
        const char *tl_[] = {provider_id, model, "input"};
        fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_TOKENS, ns, tl_),
                       (uint64_t)u.input_tokens);
    }
    if (u.output_tokens > 0) {
        const char *tl_[] = {provider_id, model, "output"};
        fr__metric_add(fr__metric_series_in(FR_M_PROVIDER_TOKENS, ns, tl_),
                       (uint64_t)u.output_tokens);
    }
    /* For the attempt's log line. */
    fr_obs_usage *acc = &fr__obs_tl.usage;
    if (!fr__obs_tl.has_call) {
        memset(acc, 0, sizeof *acc);
        acc->input_tokens = acc->output_tokens = -1;
        fr__obs_tl.has_call = 1;
    }
    copy_n(acc->provider, sizeof acc->provider, provider_id, strlen(provider_id));
    if (u.model[0] || !acc->model[0])
        copy_n(acc->model, sizeof acc->model, model, strlen(model));
    if (u.input_tokens >= 0)
        acc->input_tokens = (acc->input_tokens > 0 ? acc->input_tokens : 0) + u.input_tokens;
    if (u.output_tokens >= 0)
        acc->output_tokens = (acc->output_tokens > 0 ? acc->output_tokens : 0) + u.output_tokens;

    if (tok->span_id && traced_call(call) && fr__span_wanted()) {
        const struct fr_obs_run *o = *call->obs;
        const char *agent = call->agent ? call->agent->id : "";
        int64_t end = fr__wall_us();
        char name[128];
        snprintf(name, sizeof name, "chat %s", model);
        fr_span *s = fr__span_new(o->trace_id, tok->span_id,
                                  fr__obs_attempt_span(o, call->step_id, agent, call->attempt),
                                  name, 3, end - latency, end);
        fr__span_attr_str(s, "gen_ai.system", system);
        fr__span_attr_str(s, "gen_ai.operation.name", "chat");
        fr__span_attr_str(s, "gen_ai.request.model", model);
        if (u.model[0])
            fr__span_attr_str(s, "gen_ai.response.model", model);
        if (u.input_tokens >= 0)
            fr__span_attr_int(s, "gen_ai.usage.input_tokens", u.input_tokens);
        if (u.output_tokens >= 0)
            fr__span_attr_int(s, "gen_ai.usage.output_tokens", u.output_tokens);
        fr__span_attr_str(s, "fluxroute.provider", provider_id);
        if (st != FR_OK)
            fr__span_attr_str(s, "error.type", fr_class_name(cls));
        fr__span_status(s, st != FR_OK, call->error);
        fr__span_submit(s);
    }
}

int fr__obs_traceparent(fr_call *call, char out[56])
{
    if (!call || !traced_call(call))
        return 0;
    const struct fr_obs_run *o = *call->obs;
    uint64_t span = call->parent && fr__obs_tl.provider_span
                        ? fr__obs_tl.provider_span
                        : fr__obs_attempt_span(o, call->step_id, call->agent ? call->agent->id : "",
                                               call->attempt);
    fr__obs_traceparent_format(o->trace_id, span, out);
    return 1;
}
