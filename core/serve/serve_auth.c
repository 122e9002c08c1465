/* serve: who is calling (API keys stored as sha256, mTLS client certificates) and what
 * each role may do. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "base/fileio.h"
#include "serve/serve.h"
#include "trace/trace.h"
#include "base/yaml_tree.h"
#include "manifest/limits_doc.h"

typedef struct key_entry {
    unsigned char sha256[32];
    fr_identity who;
    fr_limits_doc limits;
} key_entry;

typedef struct client_entry {
    char cn[128];
    fr_identity who;
    fr_limits_doc limits;
} client_entry;

typedef struct tenant_entry {
    char id[72];
    fr_limits_doc limits;
} tenant_entry;

struct fr_auth {
    key_entry *keys;
    size_t n_keys;
    client_entry *clients;
    size_t n_clients;
    tenant_entry *tenants;
    size_t n_tenants;
};

/* The members each kind of entry takes: anything else is an error, as in manifests. */
static const char *const top_fields[] = {"keys", "clients", "tenants", NULL};
static const char *const key_fields[] = {"id",   "sha256", "tenant", "namespace",
                                         "role", "limits", NULL};
static const char *const client_fields[] = {"cn", "tenant", "namespace", "role", "limits", NULL};
static const char *const tenant_fields[] = {"id", "limits", NULL};

/* Refuses a member of mapping `map` that is not in `known` (NULL-terminated). */
static int only_fields(const fr_ynode *map, const char *const *known, const char *what,
                       const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; map && map->kind == FR_Y_MAP && i < map->n; i++) {
        const fr_ynode *k = map->keys[i];
        size_t j = 0;
        while (known[j] && strcmp(known[j], k->value) != 0)
            j++;
        if (known[j])
            continue;
        char list[160] = "";
        for (j = 0; known[j]; j++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                     known[j]);
        snprintf(err, errlen, "%s:%d:%d: unknown field \"%s\" in %s (expected %s)", path, k->line,
                 k->col, k->value, what, list);
        return -1;
    }
    return 0;
}

/* Reads the `limits:` member of `item` (absent: no limits) into *out. */
static int read_limits(const fr_ynode *item, const char *label, fr_limits_doc *out,
                       const char *path, char *err, size_t errlen)
{
    fr__limits_doc_init(out);
    const fr_ynode *l = fr__ymap_get(item, "limits");
    if (!l)
        return 0;
    json_object *o = NULL;
    if (fr__ynode_to_json_ex(l, &o) != 0) {
        snprintf(err, errlen, "%s:%d:%d: %s: limits: out of memory", path, l->line, l->col, label);
        return -1;
    }
    char msg[400];
    int rc = fr__limits_doc_from_json(o, "limits", out, msg, sizeof msg);
    json_object_put(o);
    if (rc != 0)
        snprintf(err, errlen, "%s:%d:%d: %s: %s", path, l->line, l->col, label, msg);
    return rc;
}

static int hexval(int c)
{
    return isdigit(c)               ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

static int parse_hex32(const char *s, unsigned char out[32])
{
    if (!s || strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static const char *scalar(const fr_ynode *map, const char *key)
{
    const fr_ynode *v = fr__ymap_get(map, key);
    return v && v->kind == FR_Y_SCALAR && v->type != FR_YS_NULL ? v->value : NULL;
}

/* Fills the tenant, namespace and role shared by keys and clients. */
static int fill_identity(const fr_ynode *item, fr_identity *who, const char *label, char *err,
                         size_t errlen, const char *path)
{
    const char *tenant = scalar(item, "tenant"), *ns = scalar(item, "namespace");
    const char *role = scalar(item, "role");
    if (!tenant || !ns || !role) {
        snprintf(err, errlen, "%s:%d:%d: %s needs tenant, namespace and role", path, item->line,
                 item->col, label);
        return -1;
    }
    char norm[40];
    if (fr__namespace_normalise(ns, norm, sizeof norm) != 0) {
        snprintf(err, errlen, "%s:%d:%d: %s: invalid namespace \"%s\"", path, item->line, item->col,
                 label, ns);
        return -1;
    }
    if (fr__key_role_parse(role, &who->role) != 0) {
        snprintf(err, errlen, "%s:%d:%d: %s: unknown role \"%s\" (expected " FR_KEY_ROLES_TEXT ")",
                 path, item->line, item->col, label, role);
        return -1;
    }
    snprintf(who->tenant, sizeof who->tenant, "%s", tenant);
    snprintf(who->namespace_, sizeof who->namespace_, "%s", norm);
    return 0;
}

fr_auth *fr__auth_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = fr__file_read(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fr_ydoc doc = {0};
    fr_diags d;
    fr__diags_init(&d, path);
    fr_auth *a = calloc(1, sizeof *a);
    int bad = !a || !text || fr__ydoc_parse(&doc, text, len, &d) != 0 || !doc.root ||
              doc.root->kind != FR_Y_MAP;
    if (bad) {
        if (d.n)
            snprintf(err, errlen, "%s:%d:%d: %s", path, d.items[0].line, d.items[0].col,
                     d.items[0].message);
        else
            snprintf(err, errlen, "%s: expected a mapping with keys: and clients:", path);
        goto fail;
    }
    const fr_ynode *keys = fr__ymap_get(doc.root, "keys"),
                   *clients = fr__ymap_get(doc.root, "clients"),
                   *tenants = fr__ymap_get(doc.root, "tenants");
    if (only_fields(doc.root, top_fields, "the keys file", path, err, errlen) != 0)
        goto fail;
    if ((keys && keys->kind != FR_Y_SEQ) || (clients && clients->kind != FR_Y_SEQ) ||
        (tenants && tenants->kind != FR_Y_SEQ)) {
        snprintf(err, errlen, "%s: keys:, clients: and tenants: must be lists", path);
        goto fail;
    }
    size_t nk = keys ? keys->n : 0, nc = clients ? clients->n : 0, nt = tenants ? tenants->n : 0;
    a->keys = calloc(nk ? nk : 1, sizeof *a->keys);
    a->clients = calloc(nc ? nc : 1, sizeof *a->clients);
    a->tenants = calloc(nt ? nt : 1, sizeof *a->tenants);
    if (!a->keys || !a->clients || !a->tenants) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < nk; i++) {
        const fr_ynode *k = keys->values[i];
        const char *id = scalar(k, "id"), *sha = scalar(k, "sha256");
        key_entry *e = &a->keys[a->n_keys];
        if (k->kind != FR_Y_MAP || !id || parse_hex32(sha, e->sha256) != 0) {
            snprintf(err, errlen,
                     "%s:%d:%d: a key needs an id and sha256 (64 hex digits of the "
                     "key's SHA-256; never the key itself)",
                     path, k->line, k->col);
            goto fail;
        }
        snprintf(e->who.id, sizeof e->who.id, "%s", id);
        char label[200];
        snprintf(label, sizeof label, "key \"%s\"", id);
        a->n_keys++; /* counted first: its limits are freed with the rest on failure */
        if (only_fields(k, key_fields, "a key", path, err, errlen) != 0 ||
            fill_identity(k, &e->who, "key", err, errlen, path) != 0 ||
            read_limits(k, label, &e->limits, path, err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < nc; i++) {
        const fr_ynode *c = clients->values[i];
        const char *cn = scalar(c, "cn");
        client_entry *e = &a->clients[a->n_clients];
        if (c->kind != FR_Y_MAP || !cn) {
            snprintf(err, errlen, "%s:%d:%d: a client needs a cn", path, c->line, c->col);
            goto fail;
        }
        snprintf(e->cn, sizeof e->cn, "%s", cn);
        snprintf(e->who.id, sizeof e->who.id, "cn=%s", cn);
        e->who.via_cert = 1;
        char label[200];
        snprintf(label, sizeof label, "client \"%s\"", cn);
        a->n_clients++;
        if (only_fields(c, client_fields, "a client", path, err, errlen) != 0 ||
            fill_identity(c, &e->who, "client", err, errlen, path) != 0 ||
            read_limits(c, label, &e->limits, path, err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < nt; i++) {
        const fr_ynode *t = tenants->values[i];
        const char *id = scalar(t, "id");
        tenant_entry *e = &a->tenants[a->n_tenants];
        if (t->kind != FR_Y_MAP || !id || strlen(id) >= sizeof e->id) {
            snprintf(err, errlen, "%s:%d:%d: a tenant needs an id (at most %zu bytes)", path,
                     t->line, t->col, sizeof e->id - 1);
            goto fail;
        }
        for (size_t j = 0; j < a->n_tenants; j++)
            if (strcmp(a->tenants[j].id, id) == 0) {
                snprintf(err, errlen, "%s:%d:%d: tenant \"%s\" is listed twice", path, t->line,
                         t->col, id);
                goto fail;
            }
        snprintf(e->id, sizeof e->id, "%s", id);
        char label[200];
        snprintf(label, sizeof label, "tenant \"%s\"", id);
        a->n_tenants++;
        if (only_fields(t, tenant_fields, "a tenant", path, err, errlen) != 0 ||
            read_limits(t, label, &e->limits, path, err, errlen) != 0)
            goto fail;
    }
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
    free(text);
    return a;
fail:
    fr__ydoc_free(&doc);
    fr__diags_free(&d);
    free(text);
    fr__auth_free(a);
    return NULL;
}

void fr__auth_free(fr_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_keys; i++)
        fr__limits_doc_clear(&a->keys[i].limits);
    for (size_t i = 0; i < a->n_clients; i++)
        fr__limits_doc_clear(&a->clients[i].limits);
    for (size_t i = 0; i < a->n_tenants; i++)
        fr__limits_doc_clear(&a->tenants[i].limits);
    free(a->keys);
    free(a->clients);
    free(a->tenants);
    free(a);
}

int fr__auth_key(const fr_auth *a, const char *key, fr_identity *out)
{
    if (!a || !key)
        return -1;
    unsigned char d[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), d) != 0)
        return -1;
    /* Every entry is compared in full, whatever matches: no timing hints. */
    const key_entry *found = NULL;
    for (size_t i = 0; i < a->n_keys; i++) {
        unsigned diff = 0;
        for (int j = 0; j < 32; j++)
            diff |= (unsigned)(a->keys[i].sha256[j] ^ d[j]);
        if (diff == 0 && !found)
            found = &a->keys[i];
    }
    if (!found)
        return -1;
    *out = found->who;
    return 0;
}

int fr__auth_cert(const fr_auth *a, const char *cn, fr_identity *out)
{
    for (size_t i = 0; a && cn && i < a->n_clients; i++)
        if (strcmp(a->clients[i].cn, cn) == 0) {
            *out = a->clients[i].who;
            return 0;
        }
    return -1;
}

int fr__auth_allows(fr_role role, fr_action action)
{
    return (fr__action_default_roles(action) & FR_ROLE_BIT(role)) != 0;
}

int fr__auth_may_scrape(fr_role role)
{
    return role == FR_ROLE_ADMIN || role == FR_ROLE_METRICS;
}

void fr__auth_each_limits(const fr_auth *a,
                          void (*fn)(void *ud, int tenant, const char *id, const fr_limits_doc *d),
                          void *ud)
{
    for (size_t i = 0; a && i < a->n_tenants; i++)
        fn(ud, 1, a->tenants[i].id, &a->tenants[i].limits);
    for (size_t i = 0; a && i < a->n_keys; i++)
        fn(ud, 0, a->keys[i].who.id, &a->keys[i].limits);
    for (size_t i = 0; a && i < a->n_clients; i++)
        fn(ud, 0, a->clients[i].who.id, &a->clients[i].limits);
}

const char *fr__auth_budget_holder(const fr_auth *a, char *buf, size_t n)
{
    for (size_t i = 0; a && i < a->n_tenants; i++)
        if (fr__limits_doc_has_budget(&a->tenants[i].limits)) {
            snprintf(buf, n, "tenant \"%s\"", a->tenants[i].id);
            return buf;
        }
    for (size_t i = 0; a && i < a->n_keys; i++)
        if (fr__limits_doc_has_budget(&a->keys[i].limits)) {
            snprintf(buf, n, "key \"%s\"", a->keys[i].who.id);
            return buf;
        }
    for (size_t i = 0; a && i < a->n_clients; i++)
        if (fr__limits_doc_has_budget(&a->clients[i].limits)) {
            snprintf(buf, n, "client \"%s\"", a->clients[i].cn);
            return buf;
        }
    return NULL;
}
