/* Comparing traces field by field, timing fields aside, and printing a divergence.
 * `executions` (how many times a queued run was started) is set aside with them: a run
 * executed again after its consumer died is the same run; so are a resumed run's marks
 * (`resumed_from`, each step's `from_journal`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/diff.h"

static int timing_key(const char *key)
{
    size_t n = strlen(key);
    if (strcmp(key, "run_id") == 0 || strcmp(key, "started_at") == 0 ||
        strcmp(key, "finished_at") == 0 || strcmp(key, "executions") == 0 ||
        strcmp(key, "resumed_from") == 0 || strcmp(key, "from_journal") == 0)
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

const char *fr__trace_member_string(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
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
                d->step = fr__trace_member_string(ea, "step");
                d->attempt = 0;
                d->agent = NULL;
            } else if (is_attempts) {
                json_object *n;
                d->attempt = json_object_object_get_ex(ea, "attempt", &n) ? json_object_get_int(n)
                                                                          : (int)i + 1;
                d->agent = fr__trace_member_string(ea, "agent");
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
    const char *step = fr__trace_member_string(div, "step"),
               *agent = fr__trace_member_string(div, "agent");
    const char *path = fr__trace_member_string(div, "path"),
               *note = fr__trace_member_string(div, "note");
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

json_object *fr__trace_debug(json_object *a, json_object *b, int all)
{
    json_object *notes = json_object_new_array();
    const char *ha = fr__trace_member_string(a, "manifest_sha256"),
               *hb = fr__trace_member_string(b, "manifest_sha256");
    if (ha && hb && strcmp(ha, hb) != 0)
        json_object_array_add(notes,
                              json_object_new_string("the two traces ran different manifests"));
    json_object *pa, *pb;
    if (json_object_object_get_ex(a, "plugins", &pa) &&
        json_object_object_get_ex(b, "plugins", &pb) && !json_object_equal(pa, pb))
        json_object_array_add(notes,
                              json_object_new_string("the two traces ran different plugin builds"));
    json_object *qa, *qb;
    if (json_object_object_get_ex(a, "providers", &qa) &&
        json_object_object_get_ex(b, "providers", &qb) && !json_object_equal(qa, qb))
        json_object_array_add(notes,
                              json_object_new_string("the two traces used different providers"));
    static const char *const skip[] = {"manifest", "manifest_name", "manifest_sha256",
                                       "plugins",  "providers",     NULL};
    json_object *found = json_object_new_array();
    size_t n = fr__trace_diff(a, b, skip, 0, all, found);
    json_object *o = json_object_new_object();
    if (!o || !notes || !found) {
        json_object_put(o);
        json_object_put(notes);
        json_object_put(found);
        return NULL;
    }
    json_object_object_add(o, "identical", json_object_new_boolean(n == 0));
    json_object_object_add(o, "notes", notes);
    json_object_object_add(o, "divergences", found);
    return o;
}
