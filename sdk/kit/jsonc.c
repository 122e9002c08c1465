/* json-c's part in the kit: reading what strict JSON does not (jsonc.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <fluxroute/kit.h>

#include "jsonc.h"

/* One deep tokener per thread (freed when the thread ends; plugins are never unloaded,
 * so the destructor stays valid). */
static pthread_key_t tokener_key;
static pthread_once_t tokener_once = PTHREAD_ONCE_INIT;

static void tokener_free(void *t)
{
    json_tokener_free(t);
}

static void tokener_key_init(void)
{
    pthread_key_create(&tokener_key, tokener_free);
}

static json_tokener *thread_tokener(void)
{
    pthread_once(&tokener_once, tokener_key_init);
    json_tokener *t = pthread_getspecific(tokener_key);
    if (!t && (t = json_tokener_new_ex(FRK_JSON_MAX_DEPTH)) != NULL)
        pthread_setspecific(tokener_key, t);
    return t;
}

json_object *frk__jsonc_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (!text || len == 0) {
        snprintf(err, errlen, "empty document");
        return NULL;
    }
    if (len > INT32_MAX) {
        snprintf(err, errlen, "document too large (%zu bytes)", len);
        return NULL;
    }
    /* json-c's default depth (32) is too shallow for step inputs nesting earlier
     * steps' outputs; a deep tokener is costly to create, so each thread keeps one. */
    json_tokener *tok = thread_tokener();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_reset(tok);
    if (jerr != json_tokener_success) {
        snprintf(err, errlen, "%s at offset %zu",
                 jerr == json_tokener_continue ? "unexpected end of document"
                                               : json_tokener_error_desc(jerr),
                 end);
        json_object_put(obj);
        return NULL;
    }
    for (size_t i = end; i < len; i++) {
        char c = text[i];
        if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')) {
            snprintf(err, errlen, "unexpected text after the JSON value at offset %zu", i);
            json_object_put(obj);
            return NULL;
        }
    }
    if (!obj)
        snprintf(err, errlen, "document is null");
    return obj;
}
