/* Trace documents: building, writing, parsing and checking. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "base/bytebuf.h"
#include "base/json_write.h"
#include "base/secret.h"
#include "host/effects.h"
#include "base/fileio.h"
#include "base/json_check.h"
#include "engine/pipeline.h"
#include "trace/trace.h"

/* An RFC 3339 UTC time with microseconds, as strftime's "%Y-%m-%dT%H:%M:%S" and ".%06dZ"
 * write it, without gmtime's and strftime's cost for the years 1970 to 9999. */
static void put_rfc3339(fr_bytebuf *b, int64_t wall_us, int scrub)
{
    char buf[40];
    if (wall_us >= 0 && wall_us < INT64_C(253402300800000000)) {
        int64_t secs = wall_us / 1000000, z = secs / 86400 + 719468, sod = secs % 86400;
        /* Days to a civil date (proleptic Gregorian; z >= 0 here). */
        int64_t era = z / 146097, doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int64_t d = doy - (153 * mp + 2) / 5 + 1, mon = mp < 10 ? mp + 3 : mp - 9;
        int64_t y = yoe + era * 400 + (mon <= 2);
        int64_t f[7] = {y, mon, d, sod / 3600, sod / 60 % 60, sod % 60, wall_us % 1000000};
        static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
        static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
        char *w = buf;
        for (int i = 0; i < 7; i++) {
            for (int k = width[i] - 1; k >= 0; k--, f[i] /= 10)
                w[k] = (char)('0' + f[i] % 10);
            w += width[i];
            *w++ = after[i];
        }
        *w = '\0';
    } else {
        time_t t = (time_t)(wall_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, sizeof buf - n, ".%06dZ", (int)(wall_us % 1000000));
    }
    fr__json_write_cstr_scrub(b, buf, scrub);
}

/* The plugins the pipeline uses, each once, in manifest order. */
json_object *fr__trace_plugins(const fr_pipeline *p)
{
    const fr_manifest *m = p->m;
    json_object *arr = json_object_new_array();
    size_t n = m->n_providers + m->n_agents;
    const fr_loaded_plugin **seen = calloc(n ? n : 1, sizeof *seen);
    size_t n_seen = 0;
    for (size_t i = 0; seen && i < n; i++) {
        const fr_instance *inst =
            i < m->n_providers ? &p->providers[i] : &p->agents[i - m->n_providers];
        const fr_loaded_plugin *lp = inst->plugin;
        int dup = 0;
        for (size_t k = 0; k < n_seen && !dup; k++)
            dup = seen[k] == lp;
        if (!lp || dup)
            continue;
        seen[n_seen++] = lp;
        json_object *o = json_object_new_object();
        char abi[16];
        snprintf(abi, sizeof abi, "%u.%u", FR_ABI_VERSION_MAJOR(lp->desc->abi_version),
                 FR_ABI_VERSION_MINOR(lp->desc->abi_version));
        json_object_object_add(o, "name", json_object_new_string(lp->name));
        json_object_object_add(o, "version",
                               json_object_new_string(lp->desc->version ? lp->desc->version : ""));
        json_object_object_add(o, "abi", json_object_new_string(abi));
        json_object_object_add(o, "sha256", json_object_new_string(lp->sha256));
        json_object_array_add(arr, o);
    }
    free(seen);
    return arr;
}

char *fr__trace_manifest_text(const fr_manifest *m, char sha[65])
{
    char *text = fr__secret_scrub(m->text);
    if (!text)
        text = strdup(m->text);
    if (text)
        fr__sha256_hex(text, strlen(text), sha);
    return text;
}

/* ---- the memo of a pipeline's build -------------------------------------------------- */

/* What every trace (and journal header) of a pipeline's runs has in common, written once:
 * `"manifest_name":...,"manifest_sha256":...,"plugins":[...],"providers":[...]` then
 * `"manifest":"..."`, each string scrubbed of secrets as a trace's tree was (the manifest
 * text twice: fr__trace_manifest_text, then with the tree).  Kept in the pipeline
 * (fr_pipeline.trace_memo, under its mu), rebuilt when the secrets remembered change. */
typedef struct trace_memo {
    size_t secrets; /* fr__secret_generation() it was scrubbed under */
    char *text;
    size_t split, len; /* the manifest member starts at text + split + 1 (after a comma) */
} trace_memo;

static void memo_free(void *c)
{
    if (c)
        free(((trace_memo *)c)->text);
    free(c);
}

static trace_memo *memo_build(const fr_pipeline *p, size_t secrets)
{
    const fr_manifest *m = p->m;
    char sha[65];
    char *text = fr__trace_manifest_text(m, sha);
    json_object *plugins = fr__trace_plugins(p), *providers = fr__trace_providers_build(m);
    fr__secret_scrub_json(plugins);
    fr__secret_scrub_json(providers);
    fr_bytebuf b = {0};
    fr__bytebuf_append(&b, "\"manifest_name\":", 16);
    fr__json_write_cstr_scrub(&b, m->path, 1);
    fr__bytebuf_append(&b, ",\"manifest_sha256\":", 19);
    fr__json_write_cstr_scrub(&b, sha, 1);
    fr__bytebuf_append(&b, ",\"plugins\":", 11);
    fr__json_write_value(&b, plugins, NULL);
    fr__bytebuf_append(&b, ",\"providers\":", 13);
    fr__json_write_value(&b, providers, NULL);
    size_t split = b.len;
    fr__bytebuf_append(&b, ",\"manifest\":", 12);
    fr__json_write_cstr_scrub(&b, text, 1);
    json_object_put(plugins);
    json_object_put(providers);
    trace_memo *c = calloc(1, sizeof *c);
    if (!text || !plugins || !providers || b.oom || !c) {
        free(text);
        free(b.data);
        free(c);
        return NULL;
    }
    free(text);
    c->secrets = secrets;
    c->text = b.data;
    c->split = split;
    c->len = b.len;
    return c;
}

void fr__trace_put_build(fr_bytebuf *b, const fr_pipeline *cp, int part)
{
    fr_pipeline *p = (fr_pipeline *)cp; /* only its memo and mu change */
    size_t secrets = fr__secret_generation();
    pthread_mutex_lock(&p->mu);
    trace_memo *c = p->trace_memo;
    int fresh = c && c->secrets == secrets;
    pthread_mutex_unlock(&p->mu);
    if (!fresh) {
        trace_memo *built = memo_build(p, secrets);
        if (!built) {
            b->oom = 1;
            return;
        }
        pthread_mutex_lock(&p->mu);
        memo_free(p->trace_memo);
        p->trace_memo = built;
        p->trace_memo_free = memo_free;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu); /* the memo may be replaced meanwhile: copied held */
    c = p->trace_memo;
    if (part == 0)
        fr__bytebuf_append(b, c->text, c->split);
    else
        fr__bytebuf_append(b, c->text + c->split + 1, c->len - c->split - 1);
    pthread_mutex_unlock(&p->mu);
}

/* ---- the trace, written as text ------------------------------------------------------- */

/* The trace's members in the order traces have always had them: the report's own after
 * seed and input, the manifest last. */
static void trace_write(fr_bytebuf *b, const fr_pipeline *p, const fr_run_result *r, int scrub)
{
    fr__bytebuf_append(b, "{\"format\":", 10);
    fr__json_write_cstr_scrub(b, FR_TRACE_FORMAT, scrub);
    fr__bytebuf_append(b, ",\"version\":", 11);
    fr__bytebuf_put_int(b, FR_TRACE_VERSION);
    fr__bytebuf_append(b, ",\"run_id\":", 10);
    fr__json_write_cstr_scrub(b, r->run_id, scrub);
    fr__bytebuf_append(b, ",\"started_at\":", 14);
    put_rfc3339(b, r->started_at_us, scrub);
    fr__bytebuf_append(b, ",\"finished_at\":", 15);
    put_rfc3339(b, r->finished_at_us, scrub);
    fr__bytebuf_append(b, ",", 1);
    fr__trace_put_build(b, p, 0);
    fr__bytebuf_append(b, ",\"seed\":", 8);
    fr__bytebuf_put_uint(b, r->seed);
    fr__bytebuf_append(b, ",\"input\":", 9);
    if (r->input_json)
        fr__report_put_json_text(b, r->input_json, strlen(r->input_json), scrub);
    else
        fr__bytebuf_append(b, "null", 4);
    fr__bytebuf_append(b, ",", 1);
    fr__report_write(b, p, r,
                     FR_REPORT_EFFECTS | FR_REPORT_IN_TRACE | (scrub ? FR_REPORT_SCRUB : 0));
    fr__bytebuf_append(b, ",", 1);
    fr__trace_put_build(b, p, 1);
    fr__bytebuf_append(b, "}", 1);
}

char *fr__trace_json(const fr_pipeline *p, const fr_run_result *r)
{
    fr_bytebuf b = {0};
    trace_write(&b, p, r, 0);
    /* Strings are scrubbed of secrets as a tree's would be.  Written plainly first: when no
     * string of the text holds a secret (nearly always), scrubbing would change nothing.
     * Else the trace is written again with every string scrubbed. */
    if (!b.oom && fr__secret_in_json(b.data, b.len)) {
        b.len = 0;
        trace_write(&b, p, r, 1);
    }
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

json_object *fr__trace_build(const fr_pipeline *p, const fr_run_result *r)
{
    char *text = fr__trace_json(p, r);
    json_object *t = text ? fr__report_parse_len(text, strlen(text)) : NULL;
    free(text);
    return t;
}

int fr__trace_write(json_object *trace, const char *path, char *err, size_t errlen)
{
    size_t len;
    const char *text = json_object_to_json_string_length(
        trace, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
        &len);
    if (!text) {
        snprintf(err, errlen, "trace %s: out of memory", path);
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        snprintf(err, errlen, "trace %s: out of memory", path);
        return -1;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f && fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    int saved = errno;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved = errno;
        snprintf(err, errlen, "cannot write trace %s: %s", path, strerror(saved ? saved : EIO));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* ---- checking ------------------------------------------------------------------------ */

static int want(json_object *o, const char *key, json_type type, json_object **out, char *err,
                size_t errlen, const char *where)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) {
        snprintf(err, errlen, "%s%s%s: missing", where, *where ? "." : "", key);
        return -1;
    }
    if (!json_object_is_type(v, type) &&
        !(type == json_type_double && json_object_is_type(v, json_type_int))) {
        static const char *const names[] = {"null",      "a boolean", "a number", "an integer",
                                            "an object", "an array",  "a string"};
        snprintf(err, errlen, "%s%s%s: expected %s", where, *where ? "." : "", key,
                 (unsigned)type < 7 ? names[type] : "another type");
        return -1;
    }
    if (out)
        *out = v;
    return 0;
}

static int check_attempt(json_object *a, const char *where, char *err, size_t errlen)
{
    json_object *effects;
    if (!json_object_is_type(a, json_type_object)) {
        snprintf(err, errlen, "%s: expected an object", where);
        return -1;
    }
    if (want(a, "attempt", json_type_int, NULL, err, errlen, where) ||
        want(a, "agent", json_type_string, NULL, err, errlen, where) ||
        want(a, "status", json_type_string, NULL, err, errlen, where) ||
        want(a, "backoff_us", json_type_int, NULL, err, errlen, where) ||
        want(a, "effects", json_type_array, &effects, err, errlen, where))
        return -1;
    char sub[256];
    for (size_t i = 0; i < json_object_array_length(effects); i++) {
        json_object *e = json_object_array_get_idx(effects, i);
        snprintf(sub, sizeof sub, "%s.effects[%zu]", where, i);
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(err, errlen, "%s: expected an object", sub);
            return -1;
        }
        if (want(e, "kind", json_type_string, NULL, err, errlen, sub))
            return -1;
    }
    return 0;
}

static int check_step(json_object *s, const char *where, char *err, size_t errlen)
{
    json_object *atts, *status;
    if (!json_object_is_type(s, json_type_object)) {
        snprintf(err, errlen, "%s: expected an object", where);
        return -1;
    }
    if (want(s, "step", json_type_string, NULL, err, errlen, where) ||
        want(s, "agent", json_type_string, NULL, err, errlen, where) ||
        want(s, "status", json_type_string, &status, err, errlen, where) ||
        want(s, "attempts", json_type_array, &atts, err, errlen, where))
        return -1;
    const char *st = json_object_get_string(status);
    if (strcmp(st, "succeeded") && strcmp(st, "failed") && strcmp(st, "skipped")) {
        snprintf(err, errlen, "%s.status: \"%.40s\" is not succeeded, failed or skipped", where,
                 st);
        return -1;
    }
    char sub[200];
    for (size_t i = 0; i < json_object_array_length(atts); i++) {
        snprintf(sub, sizeof sub, "%s.attempts[%zu]", where, i);
        if (check_attempt(json_object_array_get_idx(atts, i), sub, err, errlen))
            return -1;
    }
    return 0;
}

json_object *fr__trace_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "trace too large");
        return NULL;
    }
    if (!fr__json_valid(text, len)) {
        snprintf(err, errlen, "not valid JSON%s",
                 len == 0 ? " (empty)" : " (truncated or corrupt?)");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(FR_JSON_MAX_DEPTH + 1);
    json_object *t = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    json_tokener_free(tok);
    if (!t) {
        snprintf(err, errlen, "cannot parse the JSON");
        return NULL;
    }
    json_object *v, *steps, *plugins;
    if (!json_object_is_type(t, json_type_object)) {
        snprintf(err, errlen, "expected a JSON object at the top");
        goto bad;
    }
    if (want(t, "format", json_type_string, &v, err, errlen, ""))
        goto bad;
    if (strcmp(json_object_get_string(v), FR_TRACE_FORMAT) != 0) {
        snprintf(err, errlen, "format: \"%.40s\" is not a FluxRoute trace (\"%s\")",
                 json_object_get_string(v), FR_TRACE_FORMAT);
        goto bad;
    }
    if (want(t, "version", json_type_int, &v, err, errlen, ""))
        goto bad;
    int64_t version = json_object_get_int64(v);
    if (version < 1 || version > FR_TRACE_VERSION) {
        snprintf(err, errlen,
                 "version: trace version %lld is not supported (this fluxroute reads versions "
                 "1 to %d)",
                 (long long)version, FR_TRACE_VERSION);
        goto bad;
    }
    json_object *providers = NULL;
    if (version >= 2 && want(t, "providers", json_type_array, &providers, err, errlen, ""))
        goto bad;
    if (want(t, "manifest", json_type_string, NULL, err, errlen, "") ||
        want(t, "manifest_sha256", json_type_string, NULL, err, errlen, "") ||
        want(t, "seed", json_type_int, NULL, err, errlen, "") ||
        want(t, "status", json_type_string, NULL, err, errlen, "") ||
        want(t, "plugins", json_type_array, &plugins, err, errlen, "") ||
        want(t, "steps", json_type_array, &steps, err, errlen, ""))
        goto bad;
    if (!json_object_object_get_ex(t, "input", NULL)) {
        snprintf(err, errlen, "input: missing");
        goto bad;
    }
    char where[64];
    for (size_t i = 0; i < json_object_array_length(plugins); i++) {
        json_object *pl = json_object_array_get_idx(plugins, i);
        snprintf(where, sizeof where, "plugins[%zu]", i);
        if (!json_object_is_type(pl, json_type_object)) {
            snprintf(err, errlen, "%s: expected an object", where);
            goto bad;
        }
        if (want(pl, "name", json_type_string, NULL, err, errlen, where) ||
            want(pl, "sha256", json_type_string, NULL, err, errlen, where))
            goto bad;
    }
    for (size_t i = 0; providers && i < json_object_array_length(providers); i++) {
        json_object *pr = json_object_array_get_idx(providers, i);
        snprintf(where, sizeof where, "providers[%zu]", i);
        if (!json_object_is_type(pr, json_type_object)) {
            snprintf(err, errlen, "%s: expected an object", where);
            goto bad;
        }
        if (want(pr, "id", json_type_string, NULL, err, errlen, where) ||
            want(pr, "plugin", json_type_string, NULL, err, errlen, where))
            goto bad;
    }
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        snprintf(where, sizeof where, "steps[%zu]", i);
        if (check_step(json_object_array_get_idx(steps, i), where, err, errlen))
            goto bad;
    }
    return t;
bad:
    json_object_put(t);
    return NULL;
}

json_object *fr__trace_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *buf = fr__file_read(path, &len);
    if (!buf) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char why[512];
    json_object *t = fr__trace_parse(buf, len, why, sizeof why);
    free(buf);
    if (!t)
        snprintf(err, errlen, "%s: invalid trace: %s", path, why);
    return t;
}
