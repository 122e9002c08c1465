/* The common chat completion requests translated from their text (gateway.h): the
 * normalized request that fr__gw_translate_request builds as a tree and serve writes as
 * the run's input, written here byte for byte without parsing the body into a tree or
 * building the request's.  It takes model, messages of system, developer, user and
 * assistant roles with string content, stream, stream_options, max_tokens (or
 * max_completion_tokens), temperature, top_p and user, each valid; anything else (another
 * field, content parts, tool messages, a value the tree way would refuse) is left to the
 * tree way, which answers it as before.  tests/serve/test_gateway_request.c checks that
 * both ways write the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_check.h"
#include "serve/gateway.h"

static int is_word(const char *v, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(v, w, n) == 0;
}

/* A string token as json-c writes the string it holds; `inner`: without its quotes.
 * -1 when json-c's own reading must decide (surrogate escapes). */
static int put_token(fr_bytebuf *b, const char *tok, size_t n, int inner)
{
    if (!fr__bytebuf_reserve(b, n))
        return -1;
    char *start = b->data + b->len, *end = fr__json_recode_string(start, tok, n);
    if (!end)
        return -1;
    if (inner) { /* drop the quotes */
        memmove(start, start + 1, (size_t)(end - start - 2));
        end -= 2;
    }
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* A number token: json-c writes an integer as it reads it (%lld), any other number as its
 * own text. */
static int put_number(fr_bytebuf *b, const char *v, size_t n, double lo, double hi)
{
    int64_t i = 0;
    int is_int = fr__json_int_token(v, n, &i);
    if (is_int < 0 || !n || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
        return -1; /* past int64 (json-c's reading decides), or no number */
    char num[64];
    if (n >= sizeof num)
        return -1;
    memcpy(num, v, n);
    num[n] = '\0';
    double d = is_int ? (double)i : strtod(num, NULL);
    if (!(d >= lo && d <= hi))
        return -1; /* a 400 of the tree way */
    if (is_int)
        fr__bytebuf_put_int(b, i);
    else
        fr__bytebuf_append(b, v, n);
    return 0;
}

/* One message {role, content} with string content: into `msgs`, or a leading system or
 * developer message's text into `sys`.  -1: the tree way. */
static int message(const char *m, size_t n, int *leading, fr_bytebuf *msgs, fr_bytebuf *sys,
                   size_t *n_sys)
{
    static const char *const keys[] = {"role", "content"};
    const char *v[2];
    size_t vn[2];
    if (fr__json_members_only(m, n, keys, 2, v, vn) != 2 || v[0][0] != '"' || v[1][0] != '"')
        return -1;
    const char *role = v[0] + 1;
    size_t rn = vn[0] - 2;
    int is_sys = is_word(role, rn, "system") || is_word(role, rn, "developer");
    if (!is_sys && !is_word(role, rn, "user") && !is_word(role, rn, "assistant"))
        return -1; /* tool messages, unknown roles */
    if (is_sys && *leading) {
        /* Joined as C strings (a NUL would end one early): left to the tree way. */
        if (memmem(v[1], vn[1], "\\u0000", 6))
            return -1;
        if ((*n_sys)++) /* even after an empty one */
            fr__bytebuf_puts(sys, "\\n\\n");
        return put_token(sys, v[1], vn[1], 1);
    }
    *leading = 0;
    fr__bytebuf_puts(msgs, msgs->len ? ",{\"role\":" : "{\"role\":");
    fr__bytebuf_append(msgs, v[0], vn[0]); /* a plain word, checked above */
    fr__bytebuf_puts(msgs, ",\"content\":");
    if (put_token(msgs, v[1], vn[1], 0) != 0)
        return -1;
    fr__bytebuf_puts(msgs, "}");
    return 0;
}

enum {
    MODEL,
    MESSAGES,
    STREAM,
    STREAM_OPTIONS,
    MAX_TOKENS,
    MAX_COMPLETION_TOKENS,
    TEMPERATURE,
    TOP_P,
    USER,
    N_FIELDS
};

static int is_null(const char *v, size_t n)
{
    return !v || is_word(v, n, "null");
}

/* The body's fields into `out`; -1: the tree way. */
static int translate(const char *const *v, const size_t *vn, fr_gw_request *rq, fr_bytebuf *out,
                     fr_bytebuf *msgs, fr_bytebuf *sys)
{
    /* model: a route name */
    if (!v[MODEL] || v[MODEL][0] != '"' || vn[MODEL] < 3 || vn[MODEL] - 2 >= sizeof rq->model ||
        memchr(v[MODEL], '\\', vn[MODEL]))
        return -1;
    memcpy(rq->model, v[MODEL] + 1, vn[MODEL] - 2);
    rq->model[vn[MODEL] - 2] = '\0';
    /* stream, stream_options */
    if (!is_null(v[STREAM], vn[STREAM]) && !is_word(v[STREAM], vn[STREAM], "true") &&
        !is_word(v[STREAM], vn[STREAM], "false"))
        return -1;
    rq->stream = v[STREAM] && is_word(v[STREAM], vn[STREAM], "true");
    if (!is_null(v[STREAM_OPTIONS], vn[STREAM_OPTIONS])) {
        static const char *const so[] = {"include_usage"};
        const char *u;
        size_t un;
        if (!rq->stream ||
            fr__json_members_only(v[STREAM_OPTIONS], vn[STREAM_OPTIONS], so, 1, &u, &un) < 0 ||
            !(is_null(u, un) || is_word(u, un, "true") || is_word(u, un, "false")))
            return -1;
        rq->include_usage = u && is_word(u, un, "true");
    }
    /* messages: leading system text first, as the tree way adds it */
    if (!v[MESSAGES])
        return -1;
    size_t at = 0, n;
    const char *m;
    int rc, leading = 1;
    size_t n_sys = 0;
    while ((rc = fr__json_array_next(v[MESSAGES], vn[MESSAGES], &at, &m, &n)) == 1)
        if (message(m, n, &leading, msgs, sys, &n_sys) != 0)
            return -1;
    if (rc != 0 || !msgs->len) /* not an array, or empty, or only system messages */
        return -1;
    fr__bytebuf_puts(out, "{");
    if (n_sys) {
        fr__bytebuf_puts(out, "\"system\":\"");
        fr__bytebuf_append(out, sys->data, sys->len);
        fr__bytebuf_puts(out, "\",");
    }
    fr__bytebuf_puts(out, "\"messages\":[");
    fr__bytebuf_append(out, msgs->data, msgs->len);
    fr__bytebuf_puts(out, "]");
    /* max_tokens: max_completion_tokens when both are given (the same value) */
    int mtc = !is_null(v[MAX_COMPLETION_TOKENS], vn[MAX_COMPLETION_TOKENS]),
        mt = !is_null(v[MAX_TOKENS], vn[MAX_TOKENS]);
    if (mtc && mt)
        return -1;
    if (mtc || mt) {
        int k = mtc ? MAX_COMPLETION_TOKENS : MAX_TOKENS;
        int64_t i;
        if (fr__json_int_token(v[k], vn[k], &i) != 1 || i <= 0)
            return -1;
        fr__bytebuf_puts(out, ",\"max_tokens\":");
        fr__bytebuf_put_int(out, i);
    }
    static const struct {
        int k;
        const char *name;
        double lo, hi;
    } nums[] = {{TEMPERATURE, ",\"temperature\":", 0, 2}, {TOP_P, ",\"top_p\":", 0, 1}};
    for (size_t i = 0; i < 2; i++) {
        int k = nums[i].k;
        if (is_null(v[k], vn[k]))
            continue;
        fr__bytebuf_puts(out, nums[i].name);
        if (put_number(out, v[k], vn[k], nums[i].lo, nums[i].hi) != 0)
            return -1;
    }
    if (!is_null(v[USER], vn[USER])) {
        if (v[USER][0] != '"')
            return -1;
        fr__bytebuf_puts(out, ",\"user\":");
        if (put_token(out, v[USER], vn[USER], 0) != 0)
            return -1;
    }
    fr__bytebuf_puts(out, rq->stream ? ",\"stream\":true}" : ",\"stream\":false}");
    return out->oom || msgs->oom || sys->oom ? -1 : 0;
}

int fr__gw_translate_text(const char *body, size_t len, fr_gw_request *rq, fr_bytebuf *out)
{
    static const char *const fields[N_FIELDS] = {
        [MODEL] = "model",
        [MESSAGES] = "messages",
        [STREAM] = "stream",
        [STREAM_OPTIONS] = "stream_options",
        [MAX_TOKENS] = "max_tokens",
        [MAX_COMPLETION_TOKENS] = "max_completion_tokens",
        [TEMPERATURE] = "temperature",
        [TOP_P] = "top_p",
        [USER] = "user",
    };
    const char *v[N_FIELDS];
    size_t vn[N_FIELDS];
    memset(rq, 0, sizeof *rq);
    *out = (fr_bytebuf){0};
    fr_bytebuf msgs = {0}, sys = {0};
    int rc = !body || !len || fr__json_members_only(body, len, fields, N_FIELDS, v, vn) < 0
                 ? -1
                 : translate(v, vn, rq, out, &msgs, &sys);
    free(msgs.data);
    free(sys.data);
    if (rc != 0) {
        free(out->data);
        *out = (fr_bytebuf){0};
        memset(rq, 0, sizeof *rq);
    }
    return rc;
}
