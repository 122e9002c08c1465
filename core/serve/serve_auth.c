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

typedef struct key_entry {
    unsigned char sha256[32];
    fr_identity who;
} key_entry;

typedef struct client_entry {
    char cn[128];
    fr_identity who;
} client_entry;

struct fr_auth {
    key_entry *keys;
    size_t n_keys;
    client_entry *clients;
    size_t n_clients;
};

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
                   *clients = fr__ymap_get(doc.root, "clients");
    if ((keys && keys->kind != FR_Y_SEQ) || (clients && clients->kind != FR_Y_SEQ)) {
        snprintf(err, errlen, "%s: keys: and clients: must be lists", path);
        goto fail;
    }
    size_t nk = keys ? keys->n : 0, nc = clients ? clients->n : 0;
    a->keys = calloc(nk ? nk : 1, sizeof *a->keys);
    a->clients = calloc(nc ? nc : 1, sizeof *a->clients);
    if (!a->keys || !a->clients) {
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
        if (fill_identity(k, &e->who, "key", err, errlen, path) != 0)
            goto fail;
        a->n_keys++;
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
        if (fill_identity(c, &e->who, "client", err, errlen, path) != 0)
            goto fail;
        a->n_clients++;
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
    free(a->keys);
    free(a->clients);
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
