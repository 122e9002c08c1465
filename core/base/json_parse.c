/* Whole-text JSON parsing with a located error (json_parse.h). */
#include "base/json_parse.h"

#include "base/json_check.h"

#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One tokener per thread, kept between parses (making one costs more than parsing a
 * small request): json-c's tokener is reset before each use. */
typedef struct cached_tokener {
    json_tokener *tok;
    int depth;
} cached_tokener;

static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void cached_free(void *p)
{
    cached_tokener *c = p;
    if (c->tok)
        json_tokener_free(c->tok);
    free(c);
}

static void tok_key_init(void)
{
    pthread_key_create(&tok_key, cached_free);
}

/* This thread's tokener for `max_depth` (reset), or NULL on OOM.  Borrowed. */
static json_tokener *thread_tokener(int max_depth)
{
    pthread_once(&tok_once, tok_key_init);
    cached_tokener *c = pthread_getspecific(tok_key);
    if (c && c->tok && c->depth == max_depth) {
        json_tokener_reset(c->tok);
        return c->tok;
    }
    if (!c && (!(c = calloc(1, sizeof *c)) || pthread_setspecific(tok_key, c) != 0)) {
        free(c);
        return NULL;
    }
    if (c->tok) /* json-c's free takes no NULL */
        json_tokener_free(c->tok);
    c->tok = json_tokener_new_ex(max_depth);
    c->depth = c->tok ? max_depth : -1; /* out of memory: tried again next time */
    return c->tok;
}

int fr__json_parse_whole(const char *s, size_t len, int max_depth, struct json_object **out,
                         size_t *err_at, const char **why)
{
    *out = NULL;
    *err_at = 0;
    *why = "the JSON text is too large";
    if (len > INT_MAX)
        return -1;
    json_tokener *tok = thread_tokener(max_depth);
    if (!tok) {
        *why = "out of memory";
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* RFC 8259: no trailing commas */
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (e == json_tokener_continue && end == len) {
        /* A number or literal at the very end waits for a delimiter: the end is one. */
        o = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
    }
    while (end < len && strchr(" \t\r\n", s[end]))
        end++;
    int json_c_ok = e == json_tokener_success && end == len;
    /* json-c lets through what RFC 8259 does not (NaN, single quotes, comments): the
     * strict check has the last word, and knows where it failed. */
    size_t bad = fr__json_check(s, len);
    if (json_c_ok && bad == FR_JSON_VALID) {
        *out = o;
        return 0;
    }
    json_object_put(o);
    *err_at = bad != FR_JSON_VALID ? bad : end;
    *why = json_c_ok                    ? "not allowed in JSON (RFC 8259)"
           : e == json_tokener_continue ? "unexpected end of input"
           : e != json_tokener_success  ? json_tokener_error_desc(e)
                                        : "trailing data after the value";
    return -1;
}

struct json_object *fr__json_tree(const char *s)
{
    json_tokener *tok = thread_tokener(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return json_tokener_parse(s);
    json_tokener_set_flags(tok, 0);
    json_object *o = json_tokener_parse_ex(tok, s, -1); /* as json_tokener_parse does */
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

void fr__json_line_col(const char *s, size_t at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && s[i]; i++) {
        if (s[i] == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}
