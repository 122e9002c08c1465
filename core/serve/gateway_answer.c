/* The gateway's answers as text (gateway.h): chat.completion and chat.completion.chunk
 * objects written from a step's output text, byte for byte what json-c writes for the
 * trees gateway_openai.c builds (fr__gw_completion, fr__gw_chunk), without parsing the
 * output into a tree or building the answer's.  An output this does not read (tool
 * calls, not an object, surrogate escapes, token counts past int64) takes the tree way;
 * tests/serve/test_gateway_answer.c checks that both ways write the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_check.h"
#include "serve/gateway.h"

/* ---- reading a normalized response ------------------------------------------------------- */

static int is_word(const char *v, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(v, w, n) == 0;
}

/* "[]", with any whitespace inside. */
static int is_empty_array(const char *v, size_t n)
{
    if (n < 2 || v[0] != '[' || v[n - 1] != ']')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!strchr(" \t\r\n", v[i]))
            return 0;
    return 1;
}

int fr__gw_answer_scan(const char *output, size_t len, fr_gw_answer *a)
{
    static const char *const keys[] = {"text", "tool_calls", "finish_reason", "usage"};
    const char *v[4];
    size_t vn[4];
    memset(a, 0, sizeof *a);
    if (fr__json_members(output, len, keys, 4, v, vn) < 0)
        return -1; /* not one object (json-c may read it otherwise), or escaped names */
    if (v[1] && !is_word(v[1], vn[1], "null") && !is_empty_array(v[1], vn[1]))
        return -1; /* tool calls: the tree way */
    if (v[0] && v[0][0] == '"')
        a->text = v[0], a->text_len = vn[0];
    a->finish = fr__gw_finish_reason(NULL);
    if (v[2] && v[2][0] == '"') {
        char name[32];
        if (memchr(v[2], '\\', vn[2]))
            return -1;
        if (vn[2] - 2 < sizeof name) { /* longer: none of the known names */
            memcpy(name, v[2] + 1, vn[2] - 2);
            name[vn[2] - 2] = '\0';
            a->finish = fr__gw_finish_reason(name);
        }
    }
    if (v[3] && v[3][0] == '{') {
        static const char *const ukeys[] = {"input_tokens", "output_tokens"};
        const char *u[2];
        size_t un[2];
        int rin = 0, rout = 0;
        if (fr__json_members(v[3], vn[3], ukeys, 2, u, un) < 0)
            return -1;
        if (u[0] && u[1]) {
            rin = fr__json_int_token(u[0], un[0], &a->input_tokens);
            rout = fr__json_int_token(u[1], un[1], &a->output_tokens);
        }
        if (rin < 0 || rout < 0)
            return -1;
        a->has_usage = rin && rout;
        if (a->has_usage &&
            __builtin_add_overflow(a->input_tokens, a->output_tokens, &a->total_tokens))
            return -1;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* `s` as a JSON string, as json-c writes it. */
static void put_string(fr_bytebuf *b, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 2) / 6 || !fr__bytebuf_reserve(b, 6 * n + 2)) {
        b->oom = 1;
        return;
    }
    b->len = (size_t)(fr__json_put_string_len(b->data + b->len, s, n) - b->data);
    b->data[b->len] = '\0';
}

/* The string token of an answer's text, as json-c writes the string it holds. */
static void put_text(fr_bytebuf *b, const fr_gw_answer *a)
{
    if (!fr__bytebuf_reserve(b, a->text_len))
        return;
    char *end = fr__json_recode_string(b->data + b->len, a->text, a->text_len);
    if (!end) { /* fr__gw_answer_scan's caller passed a token it did not check */
        b->oom = 1;
        return;
    }
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
}

static void put_usage(fr_bytebuf *b, const fr_gw_answer *a)
{
    if (!a || !a->has_usage) {
        fr__bytebuf_puts(b, "null");
        return;
    }
    fr__bytebuf_puts(b, "{\"prompt_tokens\":");
    fr__bytebuf_put_int(b, a->input_tokens);
    fr__bytebuf_puts(b, ",\"completion_tokens\":");
    fr__bytebuf_put_int(b, a->output_tokens);
    fr__bytebuf_puts(b, ",\"total_tokens\":");
    fr__bytebuf_put_int(b, a->total_tokens);
    fr__bytebuf_puts(b, "}");
}

/* gateway_openai.c's envelope, open: {"id", "object", "created", "model",
 * "system_fingerprint" and the comma after it. */
static void put_envelope(fr_bytebuf *b, const char *run_id, const char *object, long long created,
                         const char *model)
{
    /* "chatcmpl-" and the run id, escaped, without a printf: the id is written escaped
     * where its text goes, then the quote and "chatcmpl-" in front of it (over the quote
     * the escape wrote). */
    static const char prefix[] = "chatcmpl-";
    size_t plen = sizeof prefix - 1, n = strlen(run_id);
    fr__bytebuf_puts(b, "{\"id\":");
    if (n > (SIZE_MAX - plen - 2) / 6 || !fr__bytebuf_reserve(b, plen + 6 * n + 2)) {
        b->oom = 1;
        return;
    }
    char *at = b->data + b->len, *end = fr__json_put_string_len(at + plen, run_id, n);
    at[0] = '"';
    memcpy(at + 1, prefix, plen);
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    fr__bytebuf_puts(b, ",\"object\":\"");
    fr__bytebuf_puts(b, object);
    fr__bytebuf_puts(b, "\",\"created\":");
    fr__bytebuf_put_int(b, created);
    fr__bytebuf_puts(b, ",\"model\":");
    put_string(b, model, strlen(model));
    fr__bytebuf_puts(b, ",\"system_fingerprint\":null,");
}

int fr__gw_completion_put(fr_bytebuf *b, const char *run_id, long long created, const char *model,
                          const fr_gw_answer *a)
{
    put_envelope(b, run_id, "chat.completion", created, model);
    fr__bytebuf_puts(b,
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (a->text)
        put_text(b, a);
    else
        fr__bytebuf_puts(b, "null");
    fr__bytebuf_puts(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
    put_string(b, a->finish, strlen(a->finish));
    fr__bytebuf_puts(b, "}],\"usage\":");
    put_usage(b, a);
    fr__bytebuf_puts(b, "}");
    return b->oom ? -1 : 0;
}

int fr__gw_chunk_envelope(fr_gw_envelope *e, const char *run_id, long long created,
                          const char *model)
{
    fr_bytebuf b = {0};
    put_envelope(&b, run_id, "chat.completion.chunk", created, model);
    if (b.oom) {
        free(b.data);
        return -1;
    }
    e->text = b.data;
    e->len = b.len;
    return 0;
}

int fr__gw_chunk_put(fr_bytebuf *b, const fr_gw_envelope *e, const fr_gw_delta *d,
                     const char *finish_reason)
{
    fr__bytebuf_append(b, e->text, e->len);
    if (d->kind == FR_GW_DELTA_NONE) { /* the last chunk: usage only */
        fr__bytebuf_puts(b, "\"choices\":[],\"usage\":");
        put_usage(b, d->answer);
        fr__bytebuf_puts(b, "}");
        return b->oom ? -1 : 0;
    }
    fr__bytebuf_puts(b, "\"choices\":[{\"index\":0,\"delta\":");
    switch (d->kind) {
    case FR_GW_DELTA_ROLE:
        fr__bytebuf_puts(b, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}");
        break;
    case FR_GW_DELTA_BYTES:
        fr__bytebuf_puts(b, "{\"content\":");
        put_string(b, d->bytes, d->len);
        fr__bytebuf_puts(b, "}");
        break;
    case FR_GW_DELTA_TEXT:
        fr__bytebuf_puts(b, "{\"content\":");
        put_text(b, d->answer);
        fr__bytebuf_puts(b, "}");
        break;
    case FR_GW_DELTA_JSON: fr__bytebuf_append(b, d->bytes, d->len); break;
    default: fr__bytebuf_puts(b, "{}"); break;
    }
    fr__bytebuf_puts(b, ",\"logprobs\":null,\"finish_reason\":");
    if (finish_reason) {
        put_string(b, finish_reason, strlen(finish_reason));
    } else {
        fr__bytebuf_puts(b, "null");
    }
    fr__bytebuf_puts(b, "}]}");
    return b->oom ? -1 : 0;
}
