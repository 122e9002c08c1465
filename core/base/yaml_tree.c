/* libyaml events -> a tree of located nodes, with YAML 1.2 core-schema typing of plain
 * scalars.
 *
 * Decisions worth knowing:
 * - An anchor becomes usable when its node is complete, so an alias can never point
 *   into its own ancestor: the tree is acyclic.  An alias to an unknown (or not yet
 *   complete) anchor is an error.
 * - A plain integer outside int64 range is typed FR_YS_FLOAT (dval holds its value).
 * - Non-finite floats (.inf, .nan) convert to JSON as their text (JSON has no such
 *   numbers).
 * - Nesting deeper than FR_YAML_MAX_DEPTH is an error; converting to JSON stops (NULL)
 *   after FR_YAML_MAX_JSON_NODES nodes.
 * - Anchors live in an open-addressing hash table, so a document of n anchors and
 *   aliases parses in O(n) (a linear search made 70,000 of each take 20 s).
 * - Nodes are counted as they would be walked, an alias weighing as much as its target
 *   (fr_ynode.weight): alias bombs stop during parsing at fr_yaml_limits.max_nodes.
 * - After a syntax error the partial tree is freed and root is NULL (a non-NULL root
 *   with a -1 return means a complete tree with duplicate or non-scalar keys). */
#include "base/yaml_tree.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define FR_YAML_MAX_DEPTH      256
#define FR_YAML_MAX_JSON_NODES 250000

/* A slot of the anchor table: empty when name is NULL. */
typedef struct anchor {
    char *name; /* owned */
    fr_ynode *node;
} anchor;

/* A collection being built: its children in order (maps: key, value, key, value...). */
typedef struct frame {
    fr_ynode *node; /* node->weight grows as children are attached */
    char *anchor;
    fr_ynode **items;
    size_t n, cap;
} frame;

typedef struct builder {
    fr_ydoc *doc;
    fr_diags *diags;
    frame *stack;
    size_t depth, cap;
    anchor *anchors; /* hash table, cap_anchors slots (a power of two) */
    size_t n_anchors, cap_anchors;
    fr_yaml_limits *lim;
    size_t max_nodes, max_aliases;
    size_t nodes, aliases; /* counted so far (nodes with aliases expanded) */
    int errors;
    int oom;
} builder;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    void *q = realloc(p, nc * elem);
    if (q)
        *cap = nc;
    return q;
}

static fr_ynode *new_node(builder *b, fr_ynode_kind kind, yaml_mark_t mark)
{
    fr_ydoc *doc = b->doc;
    void *all = grow(doc->all, &doc->cap_all, doc->n_all + 1, sizeof *doc->all);
    if (!all)
        return NULL;
    doc->all = all;
    fr_ynode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->weight = 1;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    doc->all[doc->n_all++] = n;
    return n;
}

/* ---- core schema ---- */

static int all_in(const char *s, const char *set)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!strchr(set, *s))
            return 0;
    return 1;
}

static int is_float_text(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        s++;
        digits++;
    }
    if (*s == '.') {
        s++;
        int frac = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            frac++;
        }
        /* "1." is a float; "." alone is not. */
        if (!digits && !frac)
            return 0;
    } else if (!digits) {
        return 0;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static void type_int(fr_ynode *n, const char *digits, int base, int neg)
{
    errno = 0;
    char *end;
    unsigned long long u = strtoull(digits, &end, base);
    int over = errno == ERANGE || u > (unsigned long long)INT64_MAX + (neg ? 1u : 0u);
    if (over) {
        /* Out of int64 range: a float (documented above). */
        n->type = FR_YS_FLOAT;
        n->dval = base == 10 ? strtod(n->value, NULL) : (neg ? -1.0 : 1.0) * (double)u;
        if (base != 10 && errno == ERANGE)
            n->dval = neg ? -HUGE_VAL : HUGE_VAL;
        return;
    }
    n->type = FR_YS_INT;
    n->ival = neg ? (int64_t)(0 - u) : (int64_t)u;
    n->dval = (double)n->ival;
}

static void type_plain(fr_ynode *n)
{
    const char *s = n->value;
    n->type = FR_YS_STRING;
    if (strlen(s) != n->len)
        return; /* embedded NUL: a string */
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
        n->type = FR_YS_NULL;
        return;
    }
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        n->type = FR_YS_BOOL;
        n->ival = 1;
        return;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        n->type = FR_YS_BOOL;
        n->ival = 0;
        return;
    }
    if (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567")) {
        type_int(n, s + 2, 8, 0);
        return;
    }
    if (!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) {
        type_int(n, s + 2, 16, 0);
        return;
    }
    const char *d = s + (*s == '-' || *s == '+');
    if (all_in(d, "0123456789")) {
        type_int(n, d, 10, *s == '-');
        return;
    }
    const char *inf = s + (*s == '-' || *s == '+');
    if (!strcmp(inf, ".inf") || !strcmp(inf, ".Inf") || !strcmp(inf, ".INF")) {
        n->type = FR_YS_FLOAT;
        n->dval = *s == '-' ? -HUGE_VAL : HUGE_VAL;
        return;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        n->type = FR_YS_FLOAT;
        n->dval = NAN;
        return;
    }
    if (is_float_text(s)) {
        n->type = FR_YS_FLOAT;
        n->dval = strtod(s, NULL);
    }
}

/* ---- building ---- */

static size_t anchor_hash(const char *name)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211u;
    return h;
}

/* The slot holding `name`, or the empty slot where it belongs.  cap_anchors > 0. */
static anchor *anchor_slot(builder *b, const char *name)
{
    size_t mask = b->cap_anchors - 1, i = anchor_hash(name) & mask;
    for (;;) {
        if (b->lim)
            b->lim->anchor_probes++;
        anchor *a = &b->anchors[i];
        if (!a->name || !strcmp(a->name, name))
            return a;
        i = (i + 1) & mask;
    }
}

/* Takes `name` (owned) for `node`.  A redefined anchor shadows the earlier one (YAML
 * spec): later aliases see the new node. */
static int add_anchor(builder *b, char *name, fr_ynode *node)
{
    if (!name)
        return 0;
    if (2 * (b->n_anchors + 1) > b->cap_anchors) { /* keep the load at most 1/2 */
        size_t cap = b->cap_anchors ? 2 * b->cap_anchors : 64;
        anchor *old = b->anchors;
        size_t old_cap = b->cap_anchors;
        b->anchors = calloc(cap, sizeof *b->anchors);
        if (!b->anchors) {
            b->anchors = old;
            free(name);
            return -1;
        }
        b->cap_anchors = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].name)
                *anchor_slot(b, old[i].name) = old[i];
        free(old);
    }
    anchor *a = anchor_slot(b, name);
    if (a->name) {
        free(name);
    } else {
        a->name = name;
        b->n_anchors++;
    }
    a->node = node;
    return 0;
}

static fr_ynode *find_anchor(builder *b, const char *name)
{
    if (!b->cap_anchors)
        return NULL;
    return anchor_slot(b, name)->node;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Counts `weight` more nodes (one alias when `alias`) at `mark`.  Returns 1 (fatal,
 * reported, named in b->lim) when a limit is passed, else 0. */
static int charge(builder *b, size_t weight, int alias, yaml_mark_t mark)
{
    const char *limit = NULL;
    size_t max = 0;
    b->nodes = add_sat(b->nodes, weight);
    b->aliases += alias != 0;
    if (alias && b->aliases > b->max_aliases) {
        limit = "max_yaml_aliases";
        max = b->max_aliases;
        fr__diag_add(b->diags, (int)mark.line + 1, (int)mark.column + 1,
                     "more than %zu aliases in the document (max_yaml_aliases)", max);
    } else if (b->nodes > b->max_nodes) {
        limit = "max_yaml_nodes";
        max = b->max_nodes;
        fr__diag_add(b->diags, (int)mark.line + 1, (int)mark.column + 1,
                     "more than %zu nodes in the document (max_yaml_nodes; an alias counts as "
                     "every node it repeats)",
                     max);
    }
    if (!limit)
        return 0;
    if (b->lim) {
        b->lim->exceeded = limit;
        b->lim->exceeded_max = max;
    }
    return 1;
}

/* Hands a finished node to its parent (or makes it the root). */
static int attach(builder *b, fr_ynode *node)
{
    if (b->depth == 0) {
        if (!b->doc->root)
            b->doc->root = node;
        return 0;
    }
    frame *f = &b->stack[b->depth - 1];
    void *p = grow(f->items, &f->cap, f->n + 1, sizeof *f->items);
    if (!p)
        return -1;
    f->items = p;
    f->node->weight = add_sat(f->node->weight, node->weight);
    /* In a mapping, even positions are keys: they must be scalars. */
    if (f->node->kind == FR_Y_MAP && f->n % 2 == 0 && node->kind != FR_Y_SCALAR) {
        fr__diag_add(b->diags, node->line, node->col, "mapping keys must be scalars, got a %s",
                     fr__ynode_type_name(node));
        b->errors++;
    }
    f->items[f->n++] = node;
    return 0;
}

static int key_cmp(const fr_ynode *a, const fr_ynode *b)
{
    size_t l = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->value ? a->value : "", b->value ? b->value : "", l);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int idx_cmp(const void *pa, const void *pb, void *arg)
{
    fr_ynode *const *keys = arg;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    const fr_ynode *ka = keys[a], *kb = keys[b];
    int ascalar = ka->kind == FR_Y_SCALAR, bscalar = kb->kind == FR_Y_SCALAR;
    if (ascalar != bscalar)
        return ascalar ? -1 : 1;
    int c = ascalar ? key_cmp(ka, kb) : 0;
    if (c)
        return c;
    return a < b ? -1 : a > b;
}

/* Reports every key that repeats an earlier one, at the later key's position.  Sorting
 * an index array keeps this O(n log n) for large mappings. */
static void check_duplicates(builder *b, fr_ynode *map)
{
    if (map->n < 2)
        return;
    size_t *idx = malloc(map->n * sizeof *idx);
    if (!idx) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < map->n; i++)
        idx[i] = i;
    qsort_r(idx, map->n, sizeof *idx, idx_cmp, map->keys);
    for (size_t i = 1; i < map->n; i++) {
        const fr_ynode *k = map->keys[idx[i]], *prev = map->keys[idx[i - 1]];
        if (k->kind == FR_Y_SCALAR && prev->kind == FR_Y_SCALAR && !key_cmp(k, prev)) {
            fr__diag_add(b->diags, k->line, k->col, "duplicate key \"%s\"", k->value);
            b->errors++;
        }
    }
    free(idx);
}

static int finish_collection(builder *b)
{
    frame *f = &b->stack[--b->depth];
    fr_ynode *node = f->node;
    if (node->kind == FR_Y_MAP) {
        size_t pairs = f->n / 2;
        node->keys = calloc(pairs ? pairs : 1, sizeof *node->keys);
        node->values = calloc(pairs ? pairs : 1, sizeof *node->values);
        if (!node->keys || !node->values) {
            free(f->items);
            free(f->anchor);
            return -1;
        }
        for (size_t i = 0; i < pairs; i++) {
            node->keys[i] = f->items[2 * i];
            node->values[i] = f->items[2 * i + 1];
        }
        node->n = pairs;
        free(f->items);
        check_duplicates(b, node);
    } else {
        node->values = f->items ? f->items : calloc(1, sizeof *node->values);
        node->n = f->n;
        if (!node->values) {
            free(f->anchor);
            return -1;
        }
    }
    f->items = NULL;
    if (add_anchor(b, f->anchor, node) < 0)
        return -1;
    f->anchor = NULL;
    return attach(b, node);
}

static int start_collection(builder *b, fr_ynode_kind kind, yaml_mark_t mark,
                            const yaml_char_t *anchor_name)
{
    if (b->depth >= FR_YAML_MAX_DEPTH) {
        fr__diag_add(b->diags, (int)mark.line + 1, (int)mark.column + 1,
                     "nesting deeper than %d levels", FR_YAML_MAX_DEPTH);
        return 1; /* fatal, reported */
    }
    if (charge(b, 1, 0, mark))
        return 1;
    fr_ynode *node = new_node(b, kind, mark);
    if (!node)
        return -1;
    void *p = grow(b->stack, &b->cap, b->depth + 1, sizeof *b->stack);
    if (!p)
        return -1;
    b->stack = p;
    frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof *f);
    f->node = node;
    if (anchor_name && !(f->anchor = strdup((const char *)anchor_name)))
        return -1;
    return 0;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    if (charge(b, 1, 0, ev->start_mark))
        return 1;
    fr_ynode *n = new_node(b, FR_Y_SCALAR, ev->start_mark);
    if (!n)
        return -1;
    n->len = ev->data.scalar.length;
    n->value = malloc(n->len + 1);
    if (!n->value)
        return -1;
    memcpy(n->value, ev->data.scalar.value, n->len);
    n->value[n->len] = '\0';
    const char *tag = (const char *)ev->data.scalar.tag;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (tag && (!strcmp(tag, "tag:yaml.org,2002:str") || !strcmp(tag, "!")))
        plain = 0;
    if (plain)
        type_plain(n);
    else
        n->type = FR_YS_STRING;
    if (ev->data.scalar.anchor) {
        char *a = strdup((const char *)ev->data.scalar.anchor);
        if (!a || add_anchor(b, a, n) < 0)
            return -1;
    }
    return attach(b, n);
}

static void free_node(fr_ynode *n)
{
    free(n->value);
    free(n->keys);
    free(n->values);
    free(n);
}

static void free_all(fr_ydoc *doc)
{
    for (size_t i = 0; i < doc->n_all; i++)
        free_node(doc->all[i]);
    free(doc->all);
    doc->all = NULL;
    doc->n_all = doc->cap_all = 0;
    doc->root = NULL;
}

static void builder_free(builder *b)
{
    for (size_t i = 0; i < b->depth; i++) {
        free(b->stack[i].items);
        free(b->stack[i].anchor);
    }
    free(b->stack);
    for (size_t i = 0; i < b->cap_anchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
}

int fr__ydoc_parse(fr_ydoc *doc, const char *text, size_t len, fr_diags *diags)
{
    return fr__ydoc_parse_ex(doc, text, len, NULL, diags);
}

int fr__ydoc_parse_ex(fr_ydoc *doc, const char *text, size_t len, fr_yaml_limits *limits,
                      fr_diags *diags)
{
    memset(doc, 0, sizeof *doc);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fr__diag_add(diags, 0, 0, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), len);
    builder b = {.doc = doc,
                 .diags = diags,
                 .lim = limits,
                 .max_nodes =
                     limits && limits->max_nodes ? limits->max_nodes : FR_YAML_DEFAULT_MAX_NODES,
                 .max_aliases = limits && limits->max_aliases ? limits->max_aliases
                                                              : FR_YAML_DEFAULT_MAX_ALIASES};
    if (limits) {
        limits->exceeded = NULL;
        limits->exceeded_max = 0;
    }
    int fatal = 0, done = 0, seen_doc = 0;
    while (!done && !fatal) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_mark_t mk = parser.problem_mark;
            const char *problem = parser.problem ? parser.problem : "syntax error";
            if (parser.context)
                fr__diag_add(diags, (int)mk.line + 1, (int)mk.column + 1, "%s (%s)", problem,
                             parser.context);
            else
                fr__diag_add(diags, (int)mk.line + 1, (int)mk.column + 1, "%s", problem);
            fatal = 1;
            break;
        }
        int rc = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT: seen_doc = 1; break;
        case YAML_DOCUMENT_END_EVENT:
            done = seen_doc; /* only the first document */
            break;
        case YAML_SCALAR_EVENT: rc = on_scalar(&b, &ev); break;
        case YAML_SEQUENCE_START_EVENT:
            rc = start_collection(&b, FR_Y_SEQ, ev.start_mark, ev.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = start_collection(&b, FR_Y_MAP, ev.start_mark, ev.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: rc = b.depth > 0 ? finish_collection(&b) : 0; break;
        case YAML_ALIAS_EVENT: {
            fr_ynode *target = find_anchor(&b, (const char *)ev.data.alias.anchor);
            if (!target) {
                fr__diag_add(diags, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                             "unknown anchor \"%s\"", (const char *)ev.data.alias.anchor);
                rc = 1;
            } else if (!(rc = charge(&b, target->weight, 1, ev.start_mark))) {
                rc = attach(&b, target);
            }
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
        if (rc < 0) {
            fr__diag_add(diags, 0, 0, "out of memory");
            fatal = 1;
        } else if (rc > 0) {
            fatal = 1;
        }
    }
    if (b.oom && !fatal) {
        fr__diag_add(diags, 0, 0, "out of memory");
        fatal = 1;
    }
    builder_free(&b);
    yaml_parser_delete(&parser);
    if (fatal) {
        free_all(doc);
        return -1;
    }
    return b.errors ? -1 : 0;
}

void fr__ydoc_free(fr_ydoc *doc)
{
    if (doc)
        free_all(doc);
}

const fr_ynode *fr__ymap_get(const fr_ynode *map, const char *key)
{
    if (!map || map->kind != FR_Y_MAP || !key)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const fr_ynode *k = map->keys[i];
        if (k->kind == FR_Y_SCALAR && k->len == kl && !memcmp(k->value, key, kl))
            return map->values[i];
    }
    return NULL;
}

/* Converts n into *out (NULL is JSON null in json-c).  Returns 0, or -1 on OOM, when
 * too deep, or when the node budget is spent (alias bombs). */
static int to_json(const fr_ynode *n, int depth, size_t *budget, struct json_object **out)
{
    *out = NULL;
    if (depth > FR_YAML_MAX_DEPTH || *budget == 0)
        return -1;
    (*budget)--;
    if (n->kind == FR_Y_SCALAR) {
        switch (n->type) {
        case FR_YS_NULL: return 0;
        case FR_YS_BOOL: *out = json_object_new_boolean(n->ival != 0); break;
        case FR_YS_INT: *out = json_object_new_int64(n->ival); break;
        case FR_YS_FLOAT:
            if (isfinite(n->dval)) {
                *out = json_object_new_double(n->dval);
                break;
            }
            /* JSON has no infinities or NaN: keep the text */
            *out = json_object_new_string_len(n->value, (int)n->len);
            break;
        default: *out = json_object_new_string_len(n->value, (int)n->len); break;
        }
        return *out ? 0 : -1;
    }
    int is_seq = n->kind == FR_Y_SEQ;
    struct json_object *c = is_seq ? json_object_new_array() : json_object_new_object();
    if (!c)
        return -1;
    for (size_t i = 0; i < n->n; i++) {
        struct json_object *v;
        int rc = to_json(n->values[i], depth + 1, budget, &v);
        if (rc == 0) {
            if (is_seq)
                rc = json_object_array_add(c, v);
            else if (n->keys[i]->kind == FR_Y_SCALAR)
                rc = json_object_object_add(c, n->keys[i]->value, v);
            else
                rc = -1;
        }
        if (rc != 0) {
            json_object_put(v);
            json_object_put(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

int fr__ynode_to_json_ex(const fr_ynode *node, struct json_object **out)
{
    size_t budget = FR_YAML_MAX_JSON_NODES;
    if (!node) {
        *out = NULL;
        return 0;
    }
    return to_json(node, 0, &budget, out);
}

struct json_object *fr__ynode_to_json(const fr_ynode *node)
{
    struct json_object *o;
    return fr__ynode_to_json_ex(node, &o) == 0 ? o : NULL;
}

char *fr__ynode_to_json_text(const fr_ynode *node)
{
    struct json_object *o;
    if (fr__ynode_to_json_ex(node, &o) != 0)
        return NULL;
    char *text;
    if (!o)
        return strdup("null");
    text = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return text;
}

const char *fr__ynode_type_name(const fr_ynode *node)
{
    if (!node)
        return "null";
    if (node->kind == FR_Y_MAP)
        return "mapping";
    if (node->kind == FR_Y_SEQ)
        return "list";
    switch (node->type) {
    case FR_YS_NULL: return "null";
    case FR_YS_BOOL: return "boolean";
    case FR_YS_INT: return "integer";
    case FR_YS_FLOAT: return "number";
    default: return "string";
    }
}
