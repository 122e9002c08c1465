/* A plugin's library dependencies and their imports (core/plugin/plugin_libraries.h). */
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/elf_symbols.h"
#include "plugin/plugin_libraries.h"

/* Prefixes of libraries that are the C runtime, the toolchain's, or the host's own. */
static const char *const skipped[] = {
    "libc.so",      "libm.so",    "libpthread.so", "libdl.so",        "librt.so",
    "libresolv.so", "libmvec.so", "ld-linux",      "libgcc_s.so",     "libasan.so",
    "libubsan.so",  "liblsan.so", "libtsan.so",    "libfluxroute.so",
};

static int is_skipped(const char *name)
{
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (strncmp(name, skipped[i], strlen(skipped[i])) == 0)
            return 1;
    return 0;
}

typedef struct walk {
    char *names[FR_PLUGIN_LIBRARIES_MAX]; /* queued libraries, owned */
    size_t n;
    int overflow;
} walk;

static void queue_needed(const char *name, void *ud)
{
    walk *w = ud;
    if (is_skipped(name))
        return;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return;
    if (w->n == FR_PLUGIN_LIBRARIES_MAX) {
        w->overflow = 1;
        return;
    }
    char *copy = strdup(name);
    if (copy)
        w->names[w->n++] = copy;
}

typedef struct find {
    const char *name;
    char path[4096];
} find;

static int match_loaded(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    find *f = ud;
    const char *p = info->dlpi_name;
    if (!p || !*p)
        return 0;
    const char *slash = strrchr(p, '/');
    if (strcmp(slash ? slash + 1 : p, f->name) != 0)
        return 0;
    snprintf(f->path, sizeof f->path, "%s", p);
    return 1;
}

typedef struct lib_imports {
    const char *lib;
    void (*fn)(const char *, const char *, void *);
    void *ud;
} lib_imports;

static void note_import(const char *sym, void *ud)
{
    lib_imports *li = ud;
    li->fn(li->lib, sym, li->ud);
}

static void list_append(char *out, size_t len, const char *name, const char *suffix)
{
    size_t used = strlen(out);
    if (used + 1 < len)
        snprintf(out + used, len - used, "%s%s%s", used ? ", " : "", name, suffix);
}

int fr__plugin_libraries_each_import(const char *path,
                                     void (*fn)(const char *lib, const char *sym, void *ud),
                                     void *ud, char *libs, size_t libs_len, char *err,
                                     size_t errlen)
{
    walk w = {.n = 0};
    int read = 0;
    if (libs_len)
        libs[0] = '\0';
    if (fr__elf_each_needed(path, queue_needed, &w, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < w.n; i++) {
        find f = {.name = w.names[i], .path = ""};
        if (!dl_iterate_phdr(match_loaded, &f)) {
            list_append(libs, libs_len, w.names[i], " (not loaded)");
            continue;
        }
        char why[256];
        lib_imports li = {w.names[i], fn, ud};
        if (fr__elf_each_undefined_symbol(f.path, note_import, &li, why, sizeof why) != 0 ||
            fr__elf_each_needed(f.path, queue_needed, &w, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", f.path, why);
            read = -1;
            break;
        }
        list_append(libs, libs_len, w.names[i], "");
        read++;
    }
    if (read >= 0 && w.overflow)
        list_append(libs, libs_len, "...", " (more than the 64 read)");
    for (size_t i = 0; i < w.n; i++)
        free(w.names[i]);
    return read;
}
