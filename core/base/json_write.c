/* JSON text written directly (core/base/json_write.h). */
#include <stdlib.h>
#include <string.h>

#include "base/json_check.h"
#include "base/json_write.h"
#include "base/secret.h"

void fr__json_write_string(fr_bytebuf *b, const char *s, size_t n)
{
    if (fr__bytebuf_reserve(b, 6 * n + 2)) {
        b->len = (size_t)(fr__json_put_string_len(b->data + b->len, s, n) - b->data);
        b->data[b->len] = '\0';
    }
}

void fr__json_write_cstr(fr_bytebuf *b, const char *s)
{
    if (s)
        fr__json_write_string(b, s, strlen(s));
    else
        fr__bytebuf_append(b, "null", 4);
}

void fr__json_write_cstr_scrub(fr_bytebuf *b, const char *s, int scrub)
{
    char *clean = scrub && s ? fr__secret_scrub(s) : NULL;
    fr__json_write_cstr(b, clean ? clean : s);
    free(clean);
}

static void write_int(fr_bytebuf *b, json_object *o)
{
    int64_t v = json_object_get_int64(o);
    /* json-c holds an integer past INT64_MAX unsigned (a seed of 64 bits). */
    if (v == INT64_MAX)
        fr__bytebuf_put_uint(b, json_object_get_uint64(o));
    else
        fr__bytebuf_put_int(b, v);
}

static void write_value(fr_bytebuf *b, json_object *o, const void *raw_marker, int depth)
{
    switch (o ? json_object_get_type(o) : json_type_null) {
    case json_type_null: fr__bytebuf_append(b, "null", 4); return;
    case json_type_boolean:
        if (json_object_get_boolean(o))
            fr__bytebuf_append(b, "true", 4);
        else
            fr__bytebuf_append(b, "false", 5);
        return;
    case json_type_int: write_int(b, o); return;
    case json_type_string:
        if (raw_marker && json_object_get_userdata(o) == raw_marker) /* JSON text as it is */
            fr__bytebuf_append(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        else
            fr__json_write_string(b, json_object_get_string(o),
                                  (size_t)json_object_get_string_len(o));
        return;
    case json_type_array:
        if (depth < FR_JSON_WRITE_MAX_DEPTH) {
            size_t n = json_object_array_length(o);
            fr__bytebuf_append(b, "[", 1);
            for (size_t i = 0; i < n; i++) {
                if (i)
                    fr__bytebuf_append(b, ",", 1);
                write_value(b, json_object_array_get_idx(o, i), raw_marker, depth + 1);
            }
            fr__bytebuf_append(b, "]", 1);
            return;
        }
        break;
    case json_type_object:
        if (depth < FR_JSON_WRITE_MAX_DEPTH) {
            int first = 1;
            fr__bytebuf_append(b, "{", 1);
            json_object_object_foreach(o, key, val)
            {
                if (!first)
                    fr__bytebuf_append(b, ",", 1);
                first = 0;
                fr__json_write_string(b, key, strlen(key));
                fr__bytebuf_append(b, ":", 1);
                write_value(b, val, raw_marker, depth + 1);
            }
            fr__bytebuf_append(b, "}", 1);
            return;
        }
        break;
    default: /* doubles: json-c's formatting */ break;
    }
    size_t n = 0;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (text)
        fr__bytebuf_append(b, text, n);
    else
        b->oom = 1;
}

void fr__json_write_value(fr_bytebuf *b, json_object *o, const void *raw_marker)
{
    write_value(b, o, raw_marker, 0);
}
