/* provider_fields.c: the normalized request's fields by ABI minor (provider_fields.h). */
#include "host/provider_fields.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* A member present and not null. */
static int has(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v;
}

static int first_too_new(json_object *req, char *field, size_t size)
{
    static const char *const top[] = {"top_p", "seed", "tool_choice", "user"};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        if (has(req, top[i])) {
            snprintf(field, size, "%s", top[i]);
            return 1;
        }
    }
    json_object *rf, *type, *msgs;
    if (json_object_object_get_ex(req, "response_format", &rf) &&
        json_object_object_get_ex(rf, "type", &type) &&
        json_object_is_type(type, json_type_string) &&
        strcmp(json_object_get_string(type), "json_schema") == 0) {
        snprintf(field, size, "response_format");
        return 1;
    }
    if (!json_object_object_get_ex(req, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role, *content;
        if (json_object_object_get_ex(m, "role", &role) &&
            json_object_is_type(role, json_type_string) &&
            strcmp(json_object_get_string(role), "developer") == 0) {
            snprintf(field, size, "messages[%zu].role", i);
            return 1;
        }
        if (json_object_object_get_ex(m, "content", &content) &&
            json_object_is_type(content, json_type_array)) {
            snprintf(field, size, "messages[%zu].content", i);
            return 1;
        }
    }
    return 0;
}

int fr__provider_field_too_new(const char *request, size_t len, unsigned minor, char *field,
                               size_t size)
{
    if (minor >= 2)
        return 0;
    json_tokener *tok = json_tokener_new();
    json_object *req = tok ? json_tokener_parse_ex(tok, request, (int)len) : NULL;
    json_tokener_free(tok);
    int found = json_object_is_type(req, json_type_object) && first_too_new(req, field, size);
    json_object_put(req);
    return found;
}

int fr__unsupported_field(const char *message, char *name, size_t size)
{
    static const char mark[] = "unsupported field '";
    if (size)
        name[0] = '\0';
    const char *p = message ? strstr(message, mark) : NULL;
    if (!p || !size)
        return 0;
    p += sizeof mark - 1;
    const char *end = strstr(p, "': ");
    if (!end || end == p)
        return 0;
    snprintf(name, size, "%.*s", (int)(end - p), p);
    return 1;
}
