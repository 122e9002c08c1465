/* serve's named manifests: a name from a request resolved to a file inside the manifest
 * directory, and the namespace a file declares, read by the server itself so that no
 * byte or diagnostic of a manifest reaches a caller of another namespace.
 *
 * Thread-safe: no global state. */
#ifndef FR_CORE_SERVE_MANIFESTS_H
#define FR_CORE_SERVE_MANIFESTS_H

#include <stddef.h>
#include <sys/stat.h>

/* 1 when `name` may name a manifest: 1-200 bytes of [A-Za-z0-9._-], not starting with
 * '.', without "..", ending in ".yaml" or ".yml".  Borrowed; nothing is kept. */
int fr__serve_manifest_name_ok(const char *name);

/* A named manifest's file, resolved. */
typedef struct fr_manifest_file {
    char *path;     /* canonical path, inside the canonical manifest directory; owned */
    struct stat st; /* the file's stat when it was resolved (its version) */
} fr_manifest_file;

/* Resolves `name` (checked with fr__serve_manifest_name_ok) in `dir`: every symlink
 * followed (realpath), the result must lie inside realpath(dir) and be a regular file.
 * Returns 0 and fills *out (free with fr__serve_manifest_file_free), or -1 for any
 * failure, which a caller reports as "not found" whatever the reason (missing, a link
 * leading out of the directory, not a regular file). */
int fr__serve_manifest_resolve(const char *dir, const char *name, fr_manifest_file *out);
void fr__serve_manifest_file_free(fr_manifest_file *f);

/* 1 when two stats are the same version of the same file (device, inode, size, mtime). */
int fr__serve_manifest_same_version(const struct stat *a, const struct stat *b);

/* Reads the resolved file: opened without following a final symlink and checked to be
 * the very file that was resolved (same version).  Returns a new NUL-terminated buffer
 * and its length in *len, or NULL (reported as "not found").  Caller frees. */
char *fr__serve_manifest_read(const fr_manifest_file *f, size_t *len);

/* The namespace a manifest's text declares: router.namespace normalised, or "default"
 * when the document has no router.namespace.  Read with the YAML parser alone, so a
 * manifest that fails validation still has one.  Returns 0 and writes it to ns (size >=
 * 40), or -1 when the text does not tell: not YAML, not a mapping at the top, `router`
 * not a mapping, or router.namespace not a valid namespace.  Such a file belongs to no
 * namespace and serve answers 404 for it to every caller. */
int fr__serve_manifest_namespace(const char *text, size_t len, char *ns, size_t size);

#endif
