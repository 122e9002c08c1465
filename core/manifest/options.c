/* Option tables: checking a `config:` mapping against a plugin's declared options and
 * filling the plugin's config struct.
 *
 * Values are typed strictly by the YAML core schema (a string option wants a string,
 * `max_tokens: "5"` is not an integer).  Messages name the owner, the option and the
 * types involved, never a value, so secret options cannot leak through them. */
#include "manifest/options.h"

#include <stdlib.h>
#include <string.h>

#include "base/duration.h"

static const char *const type_names[] = {
    [FR_OPT_STRING] = "string", [FR_OPT_INT] = "int",           [FR_OPT_BOOL] = "bool",
    [FR_OPT_DOUBLE] = "double", [FR_OPT_DURATION] = "duration", [FR_OPT_JSON] = "json",
};

const char *fr__option_type_name(fr_option_type type)
{
    if ((unsigned)type < sizeof type_names / sizeof *type_names && type_names[type])
        return type_names[type];
    return "unknown";
}

/* What each type expects, for messages. */
static const char *expected_text(fr_option_type type)
{
    switch (type) {
    case FR_OPT_STRING: return "a string";
    case FR_OPT_INT: return "an integer";
    case FR_OPT_BOOL: return "a boolean (true or false)";
    case FR_OPT_DOUBLE: return "a number";
    case FR_OPT_DURATION: return "a duration such as \"250ms\"";
    default: return "a value";
    }
}

static size_t field_size(fr_option_type type)
{
    switch (type) {
    case FR_OPT_INT:
    case FR_OPT_DURATION: return sizeof(int64_t);
    case FR_OPT_BOOL: return sizeof(int);
    case FR_OPT_DOUBLE: return sizeof(double);
    default: return sizeof(const char *);
    }
}

/* A converted value before it is stored. */
typedef struct opt_value {
    int64_t i;
    int b;
    double d;
    char *s; /* owned until stored */
} opt_value;

/* Converts node `n` for option type `type`.  Returns 0, or -1 with *why set to a static
 * reason ("type" for a type mismatch, else a duration error or "out of memory"). */
static int convert(fr_option_type type, const fr_ynode *n, opt_value *v, const char **why)
{
    memset(v, 0, sizeof *v);
    *why = "type";
    int scalar = n && n->kind == FR_Y_SCALAR;
    switch (type) {
    case FR_OPT_STRING:
        if (!scalar || n->type != FR_YS_STRING)
            return -1;
        if (!(v->s = strdup(n->value))) {
            *why = "out of memory";
            return -1;
        }
        return 0;
    case FR_OPT_INT:
        if (!scalar || n->type != FR_YS_INT)
            return -1;
        v->i = n->ival;
        return 0;
    case FR_OPT_BOOL:
        if (!scalar || n->type != FR_YS_BOOL)
            return -1;
        v->b = n->ival != 0;
        return 0;
    case FR_OPT_DOUBLE:
        if (!scalar || (n->type != FR_YS_INT && n->type != FR_YS_FLOAT))
            return -1;
        v->d = n->dval;
        return 0;
    case FR_OPT_DURATION:
        if (scalar && n->type == FR_YS_INT && n->ival == 0) {
            v->i = 0;
            return 0;
        }
        if (!scalar || n->type != FR_YS_STRING)
            return -1;
        if (fr__duration_parse(n->value, &v->i, why) != 0)
            return -1;
        if (v->i < 0) {
            *why = "must not be negative";
            return -1;
        }
        return 0;
    case FR_OPT_JSON:
        if (!(v->s = fr__ynode_to_json_text(n))) {
            *why = "cannot be converted to JSON (too large or too deeply nested)";
            return -1;
        }
        return 0;
    }
    *why = "unsupported option type";
    return -1;
}

/* Stores v at the option's offset.  Returns 0, or -1 when the field does not fit the
 * struct (a plugin bug) or memory runs out; v->s is consumed either way.  With
 * config_size 0 the options are only validated. */
static int store(const fr_plugin *desc, const fr_option *o, opt_value *v, fr_config *out)
{
    size_t size = field_size(o->type);
    if (desc->config_size == 0) {
        /* Validation only: the plugin takes no config struct. */
        free(v->s);
        return 0;
    }
    if (!out->data || o->offset > desc->config_size || size > desc->config_size - o->offset) {
        free(v->s);
        return -1;
    }
    char *at = (char *)out->data + o->offset;
    switch (o->type) {
    case FR_OPT_INT:
    case FR_OPT_DURATION: memcpy(at, &v->i, sizeof v->i); return 0;
    case FR_OPT_BOOL: memcpy(at, &v->b, sizeof v->b); return 0;
    case FR_OPT_DOUBLE: memcpy(at, &v->d, sizeof v->d); return 0;
    default: {
        char **list = realloc(out->strings, (out->n_strings + 1) * sizeof *list);
        if (!list) {
            free(v->s);
            return -1;
        }
        out->strings = list;
        out->strings[out->n_strings++] = v->s;
        const char *p = v->s;
        memcpy(at, &p, sizeof p);
        return 0;
    }
    }
}

/* Converts an option's default text (manifest syntax) the way a manifest value is. */
static int convert_default(const fr_option *o, opt_value *v, const char **why)
{
    memset(v, 0, sizeof *v);
    *why = "invalid default";
    if (o->type == FR_OPT_STRING) {
        v->s = strdup(o->default_value);
        return v->s ? 0 : -1;
    }
    if (o->type == FR_OPT_JSON) {
        struct json_object *j = json_tokener_parse(o->default_value);
        if (!j && strcmp(o->default_value, "null") != 0)
            return -1;
        v->s = strdup(j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE)
                        : "null");
        json_object_put(j);
        return v->s ? 0 : -1;
    }
    fr_diags scratch;
    fr_ydoc doc;
    fr__diags_init(&scratch, "");
    int rc = fr__ydoc_parse(&doc, o->default_value, strlen(o->default_value), &scratch);
    if (rc == 0 && doc.root)
        rc = convert(o->type, doc.root, v, why);
    else
        rc = -1;
    fr__ydoc_free(&doc);
    fr__diags_free(&scratch);
    return rc;
}

static void known_list(const fr_plugin *desc, char *buf, size_t size)
{
    size_t w = 0;
    buf[0] = '\0';
    const fr_option *opts = desc ? desc->options : NULL;
    for (const fr_option *o = opts; o && o->name && w < size; o = FR_OPTION_NEXT(desc, o)) {
        int r = snprintf(buf + w, size - w, "%s%s", o == opts ? "" : ", ", o->name);
        w += r > 0 ? (size_t)r : 0;
    }
}

int fr__options_fill(const fr_plugin *desc, const fr_ynode *config, const fr_ynode *owner_node,
                     const char *owner, fr_config *out, fr_diags *diags)
{
    memset(out, 0, sizeof *out);
    const char *pname = desc && desc->name ? desc->name : "?";
    const fr_option *opts = desc ? desc->options : NULL;
    int ol = owner_node ? owner_node->line : 0, oc = owner_node ? owner_node->col : 0;
    /* Rows are FR_OPTION_STRIDE(desc) bytes apart: a plugin of ABI 1.1 or later may have
     * rows larger than this host's fr_option. */
    size_t n_opts = 0;
    while (opts && FR_OPTION_AT(desc, n_opts)->name)
        n_opts++;
    size_t errors = diags->n;
    int failed = 0;

    if (desc && desc->config_size > 0 && !(out->data = calloc(1, desc->config_size))) {
        fr__diag_add(diags, ol, oc, "%s: out of memory", owner);
        return -1;
    }
    unsigned char *seen = calloc(n_opts ? n_opts : 1, 1);
    if (!seen) {
        fr__diag_add(diags, ol, oc, "%s: out of memory", owner);
        return -1;
    }
    if (config && !(config->kind == FR_Y_SCALAR && config->type == FR_YS_NULL) &&
        config->kind != FR_Y_MAP) {
        fr__diag_add(diags, config->line, config->col, "%s: config: expected a mapping, got %s",
                     owner, fr__ynode_type_name(config));
        config = NULL;
    }
    for (size_t i = 0; config && config->kind == FR_Y_MAP && i < config->n; i++) {
        const fr_ynode *k = config->keys[i], *v = config->values[i];
        if (k->kind != FR_Y_SCALAR)
            continue; /* reported by the YAML layer */
        size_t j = 0;
        while (j < n_opts && strcmp(FR_OPTION_AT(desc, j)->name, k->value) != 0)
            j++;
        if (j == n_opts) {
            char list[512];
            known_list(desc, list, sizeof list);
            if (n_opts)
                fr__diag_add(diags, k->line, k->col,
                             "%s: unknown option \"%s\" for plugin \"%s\" (known: %s)", owner,
                             k->value, pname, list);
            else
                fr__diag_add(diags, k->line, k->col,
                             "%s: unknown option \"%s\": plugin \"%s\" takes no options", owner,
                             k->value, pname);
            continue;
        }
        const fr_option *o = FR_OPTION_AT(desc, j);
        /* A null value leaves the option unset (JSON options take it as null). */
        if (v->kind == FR_Y_SCALAR && v->type == FR_YS_NULL && o->type != FR_OPT_JSON)
            continue;
        seen[j] = 1;
        opt_value val;
        const char *why;
        if (convert(o->type, v, &val, &why) != 0) {
            if (!strcmp(why, "type"))
                fr__diag_add(diags, v->line, v->col, "%s: option \"%s\" expects %s, got %s", owner,
                             o->name, expected_text(o->type), fr__ynode_type_name(v));
            else if (o->type == FR_OPT_DURATION)
                fr__diag_add(diags, v->line, v->col, "%s: option \"%s\": invalid duration: %s",
                             owner, o->name, why);
            else
                fr__diag_add(diags, v->line, v->col, "%s: option \"%s\": %s", owner, o->name, why);
            continue;
        }
        if (store(desc, o, &val, out) != 0)
            fr__diag_add(diags, v->line, v->col,
                         "%s: option \"%s\" cannot be stored (plugin \"%s\" declares a field "
                         "outside its config struct, or out of memory)",
                         owner, o->name, pname);
    }
    for (size_t j = 0; j < n_opts; j++) {
        const fr_option *o = FR_OPTION_AT(desc, j);
        if (seen[j])
            continue;
        if (o->required) {
            fr__diag_add(diags, ol, oc, "%s: missing required option \"%s\" of plugin \"%s\"",
                         owner, o->name, pname);
            continue;
        }
        if (!o->default_value)
            continue;
        opt_value val;
        const char *why;
        if (convert_default(o, &val, &why) != 0 || store(desc, o, &val, out) != 0)
            fr__diag_add(diags, ol, oc,
                         "%s: plugin \"%s\" declares an invalid default for option \"%s\"", owner,
                         pname, o->name);
    }
    free(seen);
    failed = diags->n != errors;
    return failed ? -1 : 0;
}

void fr__config_free(fr_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_strings; i++)
        free(cfg->strings[i]);
    free(cfg->strings);
    free(cfg->data);
    memset(cfg, 0, sizeof *cfg);
}

int fr__options_same(const fr_plugin *desc, const fr_ynode *a, const fr_ynode *b,
                     const char **differs)
{
    fr_config ca = {0}, cb = {0};
    fr_diags d;
    fr__diags_init(&d, "compare");
    int ok_a = fr__options_fill(desc, a, NULL, "a", &ca, &d) == 0;
    int ok_b = fr__options_fill(desc, b, NULL, "b", &cb, &d) == 0;
    fr__diags_free(&d);
    int same = ok_a && ok_b;
    *differs = NULL;
    /* No config struct (config_size 0): no option to differ. */
    for (size_t i = 0; same && ca.data && cb.data && desc->options && FR_OPTION_AT(desc, i)->name;
         i++) {
        const fr_option *o = FR_OPTION_AT(desc, i);
        const char *pa = (const char *)ca.data + o->offset, *pb = (const char *)cb.data + o->offset;
        if (o->type == FR_OPT_STRING || o->type == FR_OPT_JSON) {
            const char *x, *y;
            memcpy(&x, pa, sizeof x);
            memcpy(&y, pb, sizeof y);
            same = (!x && !y) || (x && y && strcmp(x, y) == 0);
        } else {
            /* int64_t, int (bools are filled as 0 or 1) or double */
            same = memcmp(pa, pb, field_size(o->type)) == 0;
        }
        if (!same)
            *differs = o->name;
    }
    fr__config_free(&ca);
    fr__config_free(&cb);
    return same;
}
