/* Plugin loader: finds NAME.so along the search path, checks it before and after
 * dlopen, and keeps loaded plugins for the process's life (a plugin is never unloaded
 * while a thread may still run its code).
 *
 * Search order (docs/plugin-guide.md): --plugin-dir (repeatable), FLUXROUTE_PLUGIN_PATH
 * (colon-separated, absolute entries only), the manifest's plugins.dirs, then the
 * built-in dir.  First match wins.  Refusals are one line: "plugin PATH: REASON"; a
 * refusal of trust reads "plugin PATH: refused: directory /x is writable by group (mode
 * 0775)".
 *
 * Thread-safety: a loader is used from one thread while plugins are resolved; loaded
 * descriptors are read-only afterwards. */
#ifndef FR_CORE_LOADER_H
#define FR_CORE_LOADER_H

#include <stddef.h>

#include <fluxroute/plugin.h>

#include "host/instance.h" /* fr_loaded_plugin */

/* One entry of `plugins list`: a file found along the path. */
typedef struct fr_plugin_listing {
    char *name; /* file name without .so */
    char *path;
    char *origin;
    const fr_loaded_plugin *plugin; /* NULL when refused */
    char *refusal;                  /* reason when refused, else NULL */
    char *shadowed_by;              /* path of the earlier file of the same name, else NULL */
} fr_plugin_listing;

typedef struct fr_loader fr_loader;

/* Creates a loader with an empty search path.  NULL on OOM. */
fr_loader *fr__loader_new(void);

/* Appends a directory to the search path (copied).  `origin` labels it in listings
 * ("--plugin-dir", "FLUXROUTE_PLUGIN_PATH", "manifest", "built-in"). */
int fr__loader_add_dir(fr_loader *l, const char *dir, const char *origin);

/* Appends each directory of a colon-separated list (empty entries skipped).  A relative
 * entry is kept but refused: a search that reaches it fails with FR_E_PERMISSION
 * ("plugin \"NAME\": refused: ORIGIN entry \"DIR\" is a relative path; ..."), and the
 * listing shows it as refused. */
int fr__loader_add_path_list(fr_loader *l, const char *list, const char *origin);

/* The built-in plugin directory: the build tree's plugins/ when the running executable
 * is the one in the build tree, the installed $(pkglibdir)/plugins otherwise.  Static
 * storage; never the working directory. */
const char *fr__loader_builtin_dir(void);

/* Finds and loads plugin `name` (cached: the second call returns the same plugin).
 * `name` must match [a-z][a-z0-9_]* (else FR_E_INVALID: a name can never reach outside
 * the search dirs).  The first DIR/NAME.so that exists wins; a refused file stops the
 * search.  On success returns 0 and sets *out (owned by the loader, valid until
 * fr__loader_free; the plugin itself stays loaded for the process's life).  On failure
 * returns a status and writes one line into err (may be NULL): "plugin PATH: REASON"
 * for a refused file (FR_E_PERMISSION for an untrusted owner, mode or directory, with
 * REASON "refused: ..."; FR_E_CONFIG for a file that is not a usable plugin, FR_E_IO),
 * or "plugin \"NAME\" not found (searched: DIR1:DIR2)" (FR_E_NOT_FOUND) when no file
 * matched.  Symlinks are followed: the checks apply to the target, and to the
 * directories above both link and target.  Trust: the file and each directory up to
 * "/" are owned by root or the effective user and writable by no one else (a sticky
 * parent such as /tmp excepted). */
int fr__loader_get(fr_loader *l, const char *name, const fr_loaded_plugin **out, char *err,
                   size_t errlen);

/* Loads one file directly (for `plugins info PATH.so` and `plugins test`).  The
 * descriptor's name must equal the file's base name without ".so", which must be a
 * valid plugin name.  Same checks, results and messages as fr__loader_get; the same
 * path loaded twice gives the same plugin.  Origin "file". */
int fr__loader_load_file(fr_loader *l, const char *path, const fr_loaded_plugin **out, char *err,
                         size_t errlen);

/* Lists every *.so along the path in search order, trying to load each (refusals are
 * listed with their reason; later files of the same name are marked shadowed and not
 * loaded).  Caller frees with fr__plugin_listing_free. */
int fr__loader_list(fr_loader *l, fr_plugin_listing **out, size_t *n);
void fr__plugin_listing_free(fr_plugin_listing *items, size_t n);

/* The search path, for messages: "DIR1:DIR2".  Static per loader. */
const char *fr__loader_search_path(fr_loader *l);

/* Number of plugins loaded so far. */
size_t fr__loader_count(const fr_loader *l);

/* Frees the loader's bookkeeping.  Does not dlclose (see above). */
void fr__loader_free(fr_loader *l);

#endif
