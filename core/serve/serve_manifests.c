/* serve's named manifests (see serve_manifests.h). */
#include "serve/serve_manifests.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/diag.h"
#include "manifest/manifest.h"
#include "base/yaml_tree.h"

/* Larger than any manifest serve would parse: the read stops here. */
#define MANIFEST_MAX_BYTES (64u << 20)

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

int fr__serve_manifest_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 200 || name[0] == '.' || strstr(name, ".."))
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return 0;
    /* Only manifests: never creds.env or any other file an operator keeps beside them. */
    return has_suffix(name, n, ".yaml") || has_suffix(name, n, ".yml");
}

int fr__serve_manifest_resolve(const char *dir, const char *name, fr_manifest_file *out)
{
    memset(out, 0, sizeof *out);
    if (!dir || !fr__serve_manifest_name_ok(name))
        return -1;
    char *root = realpath(dir, NULL);
    char joined[PATH_MAX];
    int fits = root && snprintf(joined, sizeof joined, "%s/%s", root, name) < (int)sizeof joined;
    char *real = fits ? realpath(joined, NULL) : NULL;
    size_t rn = root ? strlen(root) : 0;
    /* Inside: below the root, so the canonical path continues it with '/' (the root
     * "/" itself ends in one). */
    int inside = real && strncmp(real, root, rn) == 0 &&
                 (real[rn] == '/' || (rn == 1 && root[0] == '/')) && real[rn + (rn > 1)] != '\0';
    free(root);
    if (!inside || stat(real, &out->st) != 0 || !S_ISREG(out->st.st_mode)) {
        free(real);
        return -1;
    }
    out->path = real;
    return 0;
}

void fr__serve_manifest_file_free(fr_manifest_file *f)
{
    if (f) {
        free(f->path);
        f->path = NULL;
    }
}

int fr__serve_manifest_same_version(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

char *fr__serve_manifest_read(const fr_manifest_file *f, size_t *len)
{
    /* O_NOFOLLOW: the path is canonical, so a link there now means it was swapped;
     * O_NONBLOCK: a FIFO swapped in must not hang the request. */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != f->st.st_dev ||
        st.st_ino != f->st.st_ino || (uint64_t)st.st_size > MANIFEST_MAX_BYTES) {
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size + 1);
    while (buf && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shorter than its stat: take what is there */
        got += (size_t)n;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    *len = got;
    return buf;
}

int fr__serve_manifest_namespace(const char *text, size_t len, char *ns, size_t size)
{
    fr_diags d;
    fr__diags_init(&d, "manifest");
    fr_ydoc doc = {0};
    /* Duplicate keys leave the tree whole (and the manifest parser would read the same
     * router.namespace from it); a syntax error leaves no tree. */
    fr__ydoc_parse(&doc, text, len, &d);
    fr__diags_free(&d);
    int rc = -1;
    const fr_ynode *root = doc.root, *router = NULL, *n = NULL;
    if (root && root->kind == FR_Y_MAP) {
        router = fr__ymap_get(root, "router");
        n = router && router->kind == FR_Y_MAP ? fr__ymap_get(router, "namespace") : NULL;
        if (!router || (router->kind == FR_Y_MAP && !n))
            rc = snprintf(ns, size, "default") < (int)size ? 0 : -1;
        else if (n && n->kind == FR_Y_SCALAR && n->type != FR_YS_NULL && strlen(n->value) == n->len)
            rc = fr__namespace_normalise(n->value, ns, size) == 0 ? 0 : -1;
    }
    fr__ydoc_free(&doc);
    return rc;
}
