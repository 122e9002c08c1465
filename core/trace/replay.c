/* Replay: serving recorded effects, recording the first divergence, and comparing
 * traces with timing fields ignored. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "trace/replay.h"
#include "trace/trace.h"

struct fr_replay {
    json_object *trace; /* borrowed */
    json_object *steps; /* trace.steps (borrowed) */
    fr_cancel *cancel;
    pthread_mutex_t mu;
    json_object *divergence; /* owned, first one */
};

fr_replay *fr__replay_new(json_object *trace, fr_cancel *cancel)
{
    fr_replay *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->trace = trace;
    json_object_object_get_ex(trace, "steps", &rp->steps);
    rp->cancel = cancel;
    pthread_mutex_init(&rp->mu, NULL);
    return rp;
}

void fr__replay_set_cancel(fr_replay *rp, fr_cancel *cancel)
{
    pthread_mutex_lock(&rp->mu);
    rp->cancel = cancel;
    pthread_mutex_unlock(&rp->mu);
}

void fr__replay_free(fr_replay *rp)
{
    if (!rp)
        return;
    json_object_put(rp->divergence);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
}

json_object *fr__replay_step(fr_replay *rp, const char *step)
{
    size_t n = rp->steps ? json_object_array_length(rp->steps) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(rp->steps, i), *id;
        if (json_object_object_get_ex(s, "step", &id) &&
            strcmp(json_object_get_string(id), step) == 0)
            return s;
    }
    return NULL;
}

void fr__replay_cursor_init(fr_replay_cursor *c, fr_replay *rp, const char *step, size_t index,
                            int attempt, const char *agent)
{
    memset(c, 0, sizeof *c);
    c->rp = rp;
    c->step = step;
    c->attempt = attempt;
    c->agent = agent;
    c->attempt_index = index;
    json_object *s = fr__replay_step(rp, step), *atts, *a;
    if (s && json_object_object_get_ex(s, "attempts", &atts) &&
        index < json_object_array_length(atts) &&
        (a = json_object_array_get_idx(atts, index)) != NULL)
        json_object_object_get_ex(a, "effects", &c->effects);
}

static size_t n_effects(const fr_replay_cursor *c)
{
    return c->effects && json_object_is_type(c->effects, json_type_array)
               ? json_object_array_length(c->effects)
               : 0;
}

void fr__replay_diverge(fr_replay_cursor *c, const char *path, json_object *recorded,
                        json_object *replayed, const char *note)
{
    fr_replay *rp = c->rp;
    pthread_mutex_lock(&rp->mu);
    if (!rp->divergence) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "step", json_object_new_string(c->step));
        json_object_object_add(d, "attempt", json_object_new_int(c->attempt));
        json_object_object_add(d, "agent", c->agent ? json_object_new_string(c->agent) : NULL);
        char full[512];
        snprintf(full, sizeof full, "attempts[%zu].%s", c->attempt_index, path);
        json_object_object_add(d, "path", json_object_new_string(full));
        json_object_object_add(d, "recorded", recorded ? json_object_get(recorded) : NULL);
        json_object_object_add(d, "replayed", replayed ? json_object_get(replayed) : NULL);
        json_object_object_add(d, "note", note ? json_object_new_string(note) : NULL);
        rp->divergence = d;
        /* Stop the replay: what follows would only be noise. */
        if (rp->cancel)
            fr__cancel_fire(rp->cancel);
    }
    pthread_mutex_unlock(&rp->mu);
}

json_object *fr__replay_take(fr_replay_cursor *c, const char *kind, json_object *request,
                             const char *compare_key)
{
    char path[64], note[256];
    size_t n = n_effects(c);
    snprintf(path, sizeof path, "effects[%zu]", c->pos);
    if (c->pos >= n) {
        json_object *want = json_object_new_object();
        json_object_object_add(want, "kind", json_object_new_string(kind));
        if (request)
            json_object_object_add(want, compare_key ? compare_key : "request",
                                   json_object_get(request));
        snprintf(note, sizeof note, "the plugin made a %s call that the recording does not have",
                 kind);
        fr__replay_diverge(c, path, NULL, want, note);
        json_object_put(want);
        return NULL;
    }
    json_object *e = json_object_array_get_idx(c->effects, c->pos), *k;
    const char *rk = json_object_object_get_ex(e, "kind", &k) ? json_object_get_string(k) : "";
    if (strcmp(rk, kind) != 0) {
        json_object *want = json_object_new_object();
        json_object_object_add(want, "kind", json_object_new_string(kind));
        if (request)
            json_object_object_add(want, compare_key ? compare_key : "request",
                                   json_object_get(request));
        snprintf(note, sizeof note, "the plugin made a %s call where the recording has %s", kind,
                 rk);
        fr__replay_diverge(c, path, e, want, note);
        json_object_put(want);
        return NULL;
    }
    if (request) {
        json_object *rv = NULL;
        json_object_object_get_ex(e, compare_key ? compare_key : "request", &rv);
        if (!json_object_equal(rv, request)) {
            char p2[96];
            snprintf(p2, sizeof p2, "%s.%s", path, compare_key ? compare_key : "request");
            snprintf(note, sizeof note, "the plugin's %s call differs from the recording", kind);
            fr__replay_diverge(c, p2, rv, request, note);
            return NULL;
        }
    }
    c->pos++;
    return e;
}

const char *fr__replay_peek(const fr_replay_cursor *c)
{
    if (c->pos >= n_effects(c))
        return "";
    json_object *k;
    return json_object_object_get_ex(json_object_array_get_idx(c->effects, c->pos), "kind", &k)
               ? json_object_get_string(k)
               : "";
}

int fr__replay_attempt_abandoned(const fr_replay_cursor *c)
{
    for (size_t i = 0; i < n_effects(c); i++) {
        json_object *k;
        if (!json_object_object_get_ex(json_object_array_get_idx(c->effects, i), "kind", &k))
            continue;
        const char *kind = json_object_get_string(k);
        if (strcmp(kind, "hung") == 0 || strcmp(kind, "killed") == 0)
            return 1;
    }
    return 0;
}

void fr__replay_attempt_done(fr_replay_cursor *c)
{
    size_t n = n_effects(c);
    if (c->pos < n) {
        char path[64], note[160];
        snprintf(path, sizeof path, "effects[%zu]", c->pos);
        snprintf(note, sizeof note, "the recording has %zu effect(s) the replay did not ask for",
                 n - c->pos);
        fr__replay_diverge(c, path, json_object_array_get_idx(c->effects, c->pos), NULL, note);
    }
}

json_object *fr__replay_divergence(fr_replay *rp)
{
    return rp->divergence;
}

/* ---- trace comparison ------------------------------------------------------------------ */

static int timing_key(const char *key)
{
    size_t n = strlen(key);
    if (strcmp(key, "run_id") == 0 || strcmp(key, "started_at") == 0 ||
        strcmp(key, "finished_at") == 0)
        return 1;
    return n > 3 && strcmp(key + n - 3, "_us") == 0 && strcmp(key, "backoff_us") != 0;
}

typedef struct diff_ctx {
    int all, ignore_effects;
    const char *const *skip;
    json_object *out;
    size_t found;
    const char *step; /* the step being compared, when inside steps[] */
    int attempt;
    const char *agent;
} diff_ctx;

static void add_diff(diff_ctx *d, const char *path, json_object *a, json_object *b)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "step", d->step ? json_object_new_string(d->step) : NULL);
    json_object_object_add(o, "attempt", d->attempt ? json_object_new_int(d->attempt) : NULL);
    json_object_object_add(o, "agent", d->agent ? json_object_new_string(d->agent) : NULL);
    json_object_object_add(o, "expected", a ? json_object_get(a) : NULL);
    json_object_object_add(o, "actual", b ? json_object_get(b) : NULL);
    json_object_array_add(d->out, o);
    d->found++;
}

static int skipped_top(const diff_ctx *d, const char *key)
{
    for (size_t i = 0; d->skip && d->skip[i]; i++)
        if (strcmp(d->skip[i], key) == 0)
            return 1;
    return 0;
}

static const char *member_string(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static void diff_value(diff_ctx *d, const char *path, json_object *a, json_object *b, int depth);

static void diff_object(diff_ctx *d, const char *path, json_object *a, json_object *b, int depth)
{
    char sub[1024];
    json_object_object_foreach(a, key, av)
    {
        if (!d->all && d->found)
            return;
        if (timing_key(key) || (depth == 0 && skipped_top(d, key)) ||
            (d->ignore_effects && strcmp(key, "effects") == 0))
            continue;
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        json_object *bv;
        if (!json_object_object_get_ex(b, key, &bv)) {
            add_diff(d, sub, av, NULL);
            continue;
        }
        diff_value(d, sub, av, bv, depth + 1);
    }
    json_object_object_foreach(b, key2, bv2)
    {
        if (!d->all && d->found)
            return;
        if (timing_key(key2) || (depth == 0 && skipped_top(d, key2)) ||
            (d->ignore_effects && strcmp(key2, "effects") == 0))
            continue;
        if (!json_object_object_get_ex(a, key2, NULL)) {
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key2);
            add_diff(d, sub, NULL, bv2);
        }
    }
}

static void diff_value(diff_ctx *d, const char *path, json_object *a, json_object *b, int depth)
{
    if (!d->all && d->found)
        return;
    json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    if (ta != tb) {
        /* 1 and 1.0 are the same number. */
        int num_a = ta == json_type_int || ta == json_type_double;
        int num_b = tb == json_type_int || tb == json_type_double;
        if (!(num_a && num_b && json_object_get_double(a) == json_object_get_double(b)))
            add_diff(d, path, a, b);
        return;
    }
    if (ta == json_type_object) {
        diff_object(d, path, a, b, depth);
    } else if (ta == json_type_array) {
        size_t na = json_object_array_length(a), nb = json_object_array_length(b);
        int is_steps = strcmp(path, "steps") == 0;
        int is_attempts = strlen(path) > 9 && strcmp(path + strlen(path) - 9, ".attempts") == 0;
        char sub[1024];
        for (size_t i = 0; i < na && i < nb && (d->all || !d->found); i++) {
            json_object *ea = json_object_array_get_idx(a, i);
            const char *save_step = d->step, *save_agent = d->agent;
            int save_attempt = d->attempt;
            if (is_steps) {
                d->step = member_string(ea, "step");
                d->attempt = 0;
                d->agent = NULL;
            } else if (is_attempts) {
                json_object *n;
                d->attempt = json_object_object_get_ex(ea, "attempt", &n) ? json_object_get_int(n)
                                                                          : (int)i + 1;
                d->agent = member_string(ea, "agent");
            }
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            diff_value(d, sub, ea, json_object_array_get_idx(b, i), depth + 1);
            d->step = save_step;
            d->agent = save_agent;
            d->attempt = save_attempt;
        }
        if (na != nb && (d->all || !d->found)) {
            size_t i = na < nb ? na : nb;
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            add_diff(d, sub, i < na ? json_object_array_get_idx(a, i) : NULL,
                     i < nb ? json_object_array_get_idx(b, i) : NULL);
        }
    } else if (!json_object_equal(a, b)) {
        add_diff(d, path, a, b);
    }
}

size_t fr__trace_diff(json_object *expected, json_object *actual, const char *const *skip,
                      int ignore_effects, int all, json_object *out)
{
    diff_ctx d = {.all = all, .ignore_effects = ignore_effects, .skip = skip, .out = out};
    diff_value(&d, "", expected, actual, 0);
    return d.found;
}

/* Prints a value compactly, cut after `max` bytes. */
static void print_value(FILE *out, json_object *v, size_t max)
{
    if (!v) {
        fputs("(absent)", out);
        return;
    }
    size_t len;
    const char *text = json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (len <= max) {
        fputs(text, out);
        return;
    }
    fprintf(out, "%.*s... (%zu more bytes)", (int)max, text, len - max);
}

void fr__divergence_print(FILE *out, json_object *div, const char *a_name, const char *b_name)
{
    const char *step = member_string(div, "step"), *agent = member_string(div, "agent");
    const char *path = member_string(div, "path"), *note = member_string(div, "note");
    json_object *att = NULL, *a = NULL, *b = NULL;
    json_object_object_get_ex(div, "attempt", &att);
    if (!json_object_object_get_ex(div, a_name, &a))
        json_object_object_get_ex(div, "expected", &a);
    if (!json_object_object_get_ex(div, b_name, &b))
        json_object_object_get_ex(div, "actual", &b);
    fprintf(out, "first divergence:");
    if (step)
        fprintf(out, " step \"%s\"", step);
    if (att && json_object_get_int(att) > 0)
        fprintf(out, ", attempt %d", json_object_get_int(att));
    if (agent)
        fprintf(out, " (agent \"%s\")", agent);
    fprintf(out, "\n  at:       %s\n", path ? path : "(top)");
    int w = (int)(strlen(a_name) > strlen(b_name) ? strlen(a_name) : strlen(b_name));
    fprintf(out, "  %s:%*s ", a_name, w - (int)strlen(a_name), "");
    print_value(out, a, 300);
    fprintf(out, "\n  %s:%*s ", b_name, w - (int)strlen(b_name), "");
    print_value(out, b, 300);
    fputc('\n', out);
    if (note)
        fprintf(out, "  (%s)\n", note);
}

/* ---- replaying a whole run ------------------------------------------------------------- */

/* Notes on what changed since the recording: the manifest and each plugin. */
void fr__replay_notes(json_object *trace, const char *manifest_text, const fr_pipeline *p,
                      json_object *notes)
{
    char sha[65];
    fr__sha256_hex(manifest_text, strlen(manifest_text), sha);
    const char *rec = member_string(trace, "manifest_sha256");
    if (rec && strcmp(rec, sha) != 0) {
        char *n = fr__xasprintf("the manifest differs from the recorded one (sha256 %.12s... "
                                "recorded, %.12s... now)",
                                rec, sha);
        json_object_array_add(notes, json_object_new_string(n ? n : "manifest differs"));
        free(n);
    }
    json_object *rp = NULL;
    json_object_object_get_ex(trace, "plugins", &rp);
    const fr_manifest *m = p ? fr__pipeline_manifest(p) : NULL;
    for (size_t i = 0; m && rp && i < json_object_array_length(rp); i++) {
        json_object *pl = json_object_array_get_idx(rp, i);
        const char *name = member_string(pl, "name"), *hash = member_string(pl, "sha256");
        const char *ver = member_string(pl, "version");
        const fr_loaded_plugin *lp = NULL;
        for (size_t k = 0; !lp && k < m->n_agents; k++)
            if (p->agents[k].plugin && name && strcmp(p->agents[k].plugin->name, name) == 0)
                lp = p->agents[k].plugin;
        for (size_t k = 0; !lp && k < m->n_providers; k++)
            if (p->providers[k].plugin && name && strcmp(p->providers[k].plugin->name, name) == 0)
                lp = p->providers[k].plugin;
        char *n = NULL;
        if (!lp)
            n = fr__xasprintf("plugin \"%s\" was recorded but is not used now", name ? name : "?");
        else if (hash && strcmp(hash, lp->sha256) != 0)
            n = fr__xasprintf("plugin \"%s\" changed: %s (version %s, sha256 %.12s...) now, "
                              "version %s (sha256 %.12s...) recorded",
                              name, lp->path, lp->desc->version, lp->sha256, ver ? ver : "?", hash);
        if (n) {
            json_object_array_add(notes, json_object_new_string(n));
            free(n);
        }
    }
}

fr_status fr__replay_execute(fr_pipeline *p, json_object *trace, json_object **divergence,
                             size_t *n_steps)
{
    return fr__replay_execute_until(p, trace, 0, NULL, 0, divergence, n_steps);
}

fr_status fr__replay_execute_until(fr_pipeline *p, json_object *trace, int64_t stop_at_mono,
                                   const char *stop_why, size_t max_output_bytes,
                                   json_object **divergence, size_t *n_steps)
{
    *divergence = NULL;
    json_object *input = NULL, *seed = NULL;
    json_object_object_get_ex(trace, "input", &input);
    json_object_object_get_ex(trace, "seed", &seed);
    fr_replay *rp = fr__replay_new(trace, NULL);
    if (!rp)
        return FR_E_NOMEM;
    fr_run_options ro = {
        .input_json = json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN),
        .seed = json_object_get_uint64(seed),
        .has_seed = 1,
        .replay = rp,
        .stop_at_mono = stop_at_mono,
        .stop_why = stop_why,
        .max_output_bytes = max_output_bytes,
    };
    fr_run_result res;
    fr_status st = fr__pipeline_run(p, &ro, &res);
    if (st != FR_OK) {
        fr__replay_free(rp);
        return st;
    }
    *n_steps = res.n_steps;
    json_object *div =
        fr__replay_divergence(rp) ? json_object_get(fr__replay_divergence(rp)) : NULL;
    if (!div) {
        /* Effects matched; now the outcome of every step and attempt. */
        json_object *replayed = fr__trace_build(p, &res);
        static const char *const skip[] = {"format", "version", "manifest", "manifest_name",
                                           "manifest_sha256", "plugins", "breaker_transitions",
                                           /* the host's policy, not the run's outcome */
                                           "notes", NULL};
        json_object *found = json_object_new_array();
        if (fr__trace_diff(trace, replayed, skip, 1, 0, found) > 0) {
            json_object *d = json_object_array_get_idx(found, 0);
            div = json_object_new_object();
            json_object_object_foreach(d, key, val)
            {
                const char *k = strcmp(key, "expected") == 0 ? "recorded"
                                : strcmp(key, "actual") == 0 ? "replayed"
                                                             : key;
                json_object_object_add(div, k, json_object_get(val));
            }
        }
        json_object_put(found);
        json_object_put(replayed);
    }
    fr__run_result_free(&res);
    fr__replay_free(rp);
    *divergence = div;
    return FR_OK;
}
