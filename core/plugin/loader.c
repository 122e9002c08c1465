/* Plugin loader (see loader.h and docs/plugin-guide.md).
 *
 * A plugin file goes through three gates, and is refused at the first it fails:
 *   1. before dlopen (nothing of the file has run yet): the name is a valid plugin name;
 *      the file is opened once and every check is of that descriptor (fstat) and its
 *      canonical path, as OpenSSH checks its files: a regular file owned by root or the
 *      current user and writable by no one else; every directory from its own up to "/"
 *      (and, when a symlink led there, every directory above the link too) owned by root
 *      or the current user and writable by no one else, except that a sticky directory
 *      such as /tmp is accepted as a parent (never as the plugin's own directory); and
 *      its ELF headers do not point past the end of the file (ld.so would die of SIGBUS
 *      on a truncated file);
 *   2. dlopen(RTLD_NOW | RTLD_LOCAL) of the canonical path that was checked succeeds (the
 *      trusted directories leave nobody else a way to swap it in between);
 *   3. the descriptor checks (entry symbol, ABI major, struct size, name, kind,
 *      callbacks, reserved slots, option table).
 * A file refused at gate 3 is dlclose()d: none of its callbacks has been used.  A file
 * that passes stays loaded for the life of the process.
 *
 * Global state: only the built-in directory, computed once under pthread_once. */
#include "plugin/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Upper bound on an option table, so a missing terminator cannot run us off into
 * unrelated memory forever. */
#define FR_LOADER_MAX_OPTIONS 256

typedef struct fr_search_dir {
    char *dir;
    char *origin;
    char *refused; /* why this entry is never searched (a relative path list entry), or NULL */
} fr_search_dir;

/* A loaded plugin plus whether the search path resolved it (fr__loader_get's cache);
 * plugins loaded by explicit path are kept too, but `get` never returns them unless the
 * search path leads to the same path. */
typedef struct fr_loader_entry {
    fr_loaded_plugin plugin;
    int searched;
} fr_loader_entry;

struct fr_loader {
    fr_search_dir *dirs;
    size_t n_dirs, cap_dirs;
    fr_loader_entry **entries;
    size_t n_entries, cap_entries;
    char *search_path; /* "DIR1:DIR2", rebuilt when a dir is added */
};

/* ---- small helpers ---------------------------------------------------------------- */

/* Formats into err (if any) and replaces control characters with '?', so a hostile
 * descriptor name or file name cannot break the one-line rule. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static int valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static char *path_join(const char *dir, const char *name, const char *suffix)
{
    char *out = NULL;
    if (asprintf(&out, "%s/%s%s", dir, name, suffix) < 0)
        return NULL;
    return out;
}

/* The directory part of `path` (a new string; "." for a bare file name). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Base name of `path` without a trailing ".so" (a new string), or NULL. */
static char *plugin_name_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".so") == 0)
        len -= 3;
    return strndup(base, len);
}

/* ---- trust: the file and every directory above it, as OpenSSH checks its files ----- */

/* 1 when `uid` is root or the user we run as: nobody else may own what we load. */
static int trusted_owner(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* Who besides the owner may write, for messages. */
static const char *writers(mode_t mode)
{
    if ((mode & S_IWGRP) && (mode & S_IWOTH))
        return "group and others";
    return (mode & S_IWGRP) ? "group" : "others";
}

/* "uid 65534 (nobody)" into buf, for messages. */
static const char *uid_text(uid_t uid, char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res && res->pw_name)
        snprintf(buf, size, "uid %u (%s)", (unsigned)uid, res->pw_name);
    else
        snprintf(buf, size, "uid %u", (unsigned)uid);
    return buf;
}

/* Checks one directory of a plugin's path.  `own`: it holds the plugin file (or the link
 * to it).  A sticky directory writable by others (/tmp) is accepted as a parent, where
 * others cannot rename or remove our entries, but never as the plugin's own directory. */
static int dir_ok(const char *dir, const struct stat *st, int own, char *reason, size_t len)
{
    char who[128], me[128];
    if (!trusted_owner(st->st_uid)) {
        set_err(reason, len,
                "refused: directory %s is owned by %s, not by root or the current user (%s)", dir,
                uid_text(st->st_uid, who, sizeof who), uid_text(geteuid(), me, sizeof me));
        return 0;
    }
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
    if (!w || (!own && (st->st_mode & S_ISVTX)))
        return 1;
    set_err(reason, len, "refused: directory %s is writable by %s (mode %04o)%s", dir, writers(w),
            (unsigned)(st->st_mode & 07777),
            (st->st_mode & S_ISVTX) ? "; the sticky bit is accepted on parent directories only"
                                    : "");
    return 0;
}

/* Checks the canonical directory `dir` and every directory above it, up to "/". */
static int dirs_trusted(const char *dir, char *reason, size_t len)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf || buf[0] != '/') {
        set_err(reason, len, "refused: cannot check directory %.200s (not a canonical path)", dir);
        return 0;
    }
    for (int own = 1;; own = 0) {
        struct stat st;
        /* lstat: the path is canonical, so a symlink here means it changed under us. */
        if (lstat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            set_err(reason, len, "refused: directory %s changed while being checked", buf);
            return 0;
        }
        if (!dir_ok(buf, &st, own, reason, len))
            return 0;
        char *slash = strrchr(buf, '/');
        if (slash == buf && buf[1] == '\0')
            return 1;
        slash[slash == buf ? 1 : 0] = '\0';
    }
}

/* The canonical path of the open file `fd` (a new string): what the kernel opened, not
 * what the name resolves to now.  Falls back to realpath(3) without /proc. */
static char *fd_realpath(int fd, const char *path)
{
    char link[64], buf[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n > 0 && buf[0] == '/') {
        buf[n] = '\0';
        return strdup(buf);
    }
    return realpath(path, NULL);
}

/* The trust checks of an open plugin file: `fst` is its fstat, `real` its canonical path,
 * `path` the name it was found by.  The file, the directories above it, and the
 * directories above the name (when a symlink led elsewhere) must be owned by root or the
 * current user and writable by nobody else. */
static int file_trusted(const struct stat *fst, const char *real, const char *path, char *reason,
                        size_t len)
{
    char who[128], me[128];
    if (!trusted_owner(fst->st_uid)) {
        set_err(reason, len, "refused: file is owned by %s, not by root or the current user (%s)",
                uid_text(fst->st_uid, who, sizeof who), uid_text(geteuid(), me, sizeof me));
        return 0;
    }
    mode_t w = fst->st_mode & (S_IWGRP | S_IWOTH);
    if (w) {
        set_err(reason, len, "refused: file is writable by %s (mode %04o)", writers(w),
                (unsigned)(fst->st_mode & 07777));
        return 0;
    }
    char *rdir = dir_of(real), *ndir = dir_of(path);
    char *ndir_real = ndir ? realpath(ndir, NULL) : NULL;
    int ok = rdir && ndir_real;
    if (!ok)
        set_err(reason, len, "refused: cannot resolve the directory of %s: %s", path,
                strerror(errno));
    ok = ok && dirs_trusted(rdir, reason, len);
    if (ok && strcmp(rdir, ndir_real) != 0)
        ok = dirs_trusted(ndir_real, reason, len);
    free(rdir);
    free(ndir);
    free(ndir_real);
    return ok;
}

/* Hex SHA-256 of the open file `fd` (read from the start) into out[65]. */
static int sha256_fd(int fd, char out[65])
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return -1;
    unsigned char buf[16384];
    off_t pos = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gnutls_hash_deinit(h, NULL);
            return -1;
        }
        if (n == 0)
            break;
        gnutls_hash(h, buf, (size_t)n);
        pos += n;
    }
    unsigned char digest[32];
    gnutls_hash_deinit(h, digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

/* Digests already read, by file identity.  Every pipeline build loads its plugins again
 * (dlopen then only counts a reference) and would read each whole file again for its
 * digest: under serve's load that was a fifth of its CPU.  A file changed in place gets
 * a new ctime (set by the kernel only), so it is read again. */
#define KEPT_DIGESTS 64
typedef struct kept_digest {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    char sha256[65];
} kept_digest;
static pthread_mutex_t digests_mu = PTHREAD_MUTEX_INITIALIZER;
static kept_digest digests[KEPT_DIGESTS];
static size_t n_digests, next_digest;

static int same_file(const kept_digest *k, const struct stat *st)
{
    return k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
           k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           k->ctime.tv_sec == st->st_ctim.tv_sec && k->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Hex SHA-256 of the open file `fd`, whose fstat is *st, into out[65]: kept from an earlier
 * read of the same file, else read (and kept). */
static int file_digest(int fd, const struct stat *st, char out[65])
{
    pthread_mutex_lock(&digests_mu);
    for (size_t i = 0; i < n_digests; i++)
        if (same_file(&digests[i], st)) {
            memcpy(out, digests[i].sha256, 65);
            pthread_mutex_unlock(&digests_mu);
            return 0;
        }
    pthread_mutex_unlock(&digests_mu);
    if (sha256_fd(fd, out) != 0)
        return -1;
    kept_digest k = {.dev = st->st_dev,
                     .ino = st->st_ino,
                     .size = st->st_size,
                     .mtime = st->st_mtim,
                     .ctime = st->st_ctim};
    memcpy(k.sha256, out, 65);
    pthread_mutex_lock(&digests_mu);
    digests[next_digest] = k;
    next_digest = (next_digest + 1) % KEPT_DIGESTS;
    if (n_digests < KEPT_DIGESTS)
        n_digests++;
    pthread_mutex_unlock(&digests_mu);
    return 0;
}

/* ---- ELF sanity ------------------------------------------------------------------- */

#if __ELF_NATIVE_CLASS == 64
#define FR_ELF_CLASS ELFCLASS64
#else
#define FR_ELF_CLASS ELFCLASS32
#endif

/* ld.so maps segments without checking them against the file size, so a truncated
 * shared object kills the host with SIGBUS inside dlopen().  Checks that the program
 * header table and every segment's file bytes, and the section header table, lie within
 * the file.  Files that are not ELF of our class are left to dlopen, whose message
 * ("invalid ELF header", "wrong ELF class") is clear.  Returns 1 when fine. */
static int elf_intact(int fd, off_t file_size, char *reason, size_t len)
{
    ElfW(Ehdr) eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != FR_ELF_CLASS)
        return 1;
    uint64_t size = (uint64_t)file_size;
    if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phoff > size ||
        (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)) > size - eh.e_phoff) {
        set_err(reason, len, "truncated or corrupt ELF file (bad program header table)");
        return 0;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        ElfW(Phdr) ph;
        off_t at = (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph);
        if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph) {
            set_err(reason, len, "truncated or corrupt ELF file (cannot read program header)");
            return 0;
        }
        if (ph.p_filesz && (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)) {
            set_err(reason, len,
                    "truncated or corrupt ELF file (segment %u ends at byte %llu, file has "
                    "%llu)",
                    i, (unsigned long long)ph.p_offset + (unsigned long long)ph.p_filesz,
                    (unsigned long long)size);
            return 0;
        }
    }
    if (eh.e_shoff != 0 &&
        (eh.e_shoff > size || (uint64_t)eh.e_shnum * eh.e_shentsize > size - eh.e_shoff)) {
        set_err(reason, len,
                "truncated or corrupt ELF file (section headers beyond its %llu bytes)",
                (unsigned long long)size);
        return 0;
    }
    return 1;
}

/* ---- descriptor checks ------------------------------------------------------------ */

static size_t option_field_size(fr_option_type t, size_t *align)
{
    switch (t) {
    case FR_OPT_STRING:
    case FR_OPT_JSON: *align = alignof(const char *); return sizeof(const char *);
    case FR_OPT_INT:
    case FR_OPT_DURATION: *align = alignof(int64_t); return sizeof(int64_t);
    case FR_OPT_BOOL: *align = alignof(int); return sizeof(int);
    case FR_OPT_DOUBLE: *align = alignof(double); return sizeof(double);
    }
    *align = 1;
    return 0;
}

static int check_options(const fr_plugin *d, char *reason, size_t len)
{
    if (!d->options)
        return 1;
    /* Rows are FR_OPTION_STRIDE(d) bytes apart (ABI 1.1's option_size; ABI 1.0's row
     * without it), never sizeof(fr_option): a row of a later minor may be larger.  A
     * stride below the 1.0 row would overlap the fields every host reads, and a
     * misaligned one would misalign every row after the first. */
    size_t stride = FR_OPTION_STRIDE(d);
    if (stride < FR_OPTION_SIZE_1_0 || stride % alignof(fr_option) != 0) {
        set_err(reason, len,
                "option_size %zu is invalid (at least %zu, a multiple of %zu: set it to "
                "sizeof(fr_option))",
                stride, (size_t)FR_OPTION_SIZE_1_0, (size_t)alignof(fr_option));
        return 0;
    }
    size_t n = 0;
    while (n < FR_LOADER_MAX_OPTIONS && FR_OPTION_AT(d, n)->name)
        n++;
    if (n == FR_LOADER_MAX_OPTIONS) {
        set_err(reason, len, "option table has no terminator within %d entries",
                FR_LOADER_MAX_OPTIONS);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const fr_option *o = FR_OPTION_AT(d, i);
        if (!valid_name(o->name)) {
            set_err(reason, len, "option %zu: invalid name \"%.64s\" (expected [a-z][a-z0-9_]*)", i,
                    o->name);
            return 0;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(FR_OPTION_AT(d, j)->name, o->name) == 0) {
                set_err(reason, len, "option \"%s\" is declared twice", o->name);
                return 0;
            }
        size_t align;
        size_t size = option_field_size(o->type, &align);
        if (size == 0) {
            set_err(reason, len, "option \"%s\" has unknown type %d", o->name, (int)o->type);
            return 0;
        }
        if (o->offset > d->config_size || size > d->config_size - o->offset) {
            set_err(reason, len,
                    "option \"%s\" at offset %zu (%zu bytes) lies beyond config_size %zu", o->name,
                    o->offset, size, d->config_size);
            return 0;
        }
        if (o->offset % align != 0) {
            set_err(reason, len, "option \"%s\" at offset %zu is misaligned for its type", o->name,
                    o->offset);
            return 0;
        }
    }
    return 1;
}

/* Checks a descriptor returned by the entry function of `file_name`.so.  Returns 1 when
 * the host can use it, else 0 with one-line reason. */
static int check_descriptor(const fr_plugin *d, const char *file_name, char *reason, size_t len)
{
    if (!d) {
        set_err(reason, len, "%s returned no descriptor (NULL)", FR_PLUGIN_SYMBOL);
        return 0;
    }
    /* abi_version and struct_size open every ABI's descriptor; read nothing else until
     * both say the layout is ours. */
    if (FR_ABI_VERSION_MAJOR(d->abi_version) != FR_ABI_MAJOR) {
        set_err(reason, len, "ABI %u.%u not supported (host ABI %u.%u)",
                FR_ABI_VERSION_MAJOR(d->abi_version), FR_ABI_VERSION_MINOR(d->abi_version),
                FR_ABI_MAJOR, FR_ABI_MINOR);
        return 0;
    }
    if (d->struct_size < FR_PLUGIN_MIN_SIZE) {
        set_err(reason, len, "descriptor too small (%u bytes, need at least %zu)",
                (unsigned)d->struct_size, (size_t)FR_PLUGIN_MIN_SIZE);
        return 0;
    }
    if (!d->name) {
        set_err(reason, len, "descriptor has no name");
        return 0;
    }
    if (strcmp(d->name, file_name) != 0) {
        set_err(reason, len, "descriptor name \"%.64s\" does not match file name \"%s.so\"",
                d->name, file_name);
        return 0;
    }
    if (!d->version) {
        set_err(reason, len, "descriptor has no version");
        return 0;
    }
    if (d->kind == FR_PLUGIN_AGENT) {
        if (!d->invoke) {
            set_err(reason, len, "agent plugin has no invoke callback");
            return 0;
        }
    } else if (d->kind == FR_PLUGIN_PROVIDER) {
        if (!d->complete) {
            set_err(reason, len, "provider plugin has no complete callback");
            return 0;
        }
    } else {
        set_err(reason, len, "unknown plugin kind %d", (int)d->kind);
        return 0;
    }
    for (size_t i = 0; i < sizeof d->reserved / sizeof d->reserved[0]; i++) {
        size_t end = offsetof(fr_plugin, reserved) + (i + 1) * sizeof d->reserved[0];
        if (d->struct_size < end)
            break;
        if (d->reserved[i]) {
            set_err(reason, len, "reserved slot %zu is not NULL", i);
            return 0;
        }
    }
    return check_options(d, reason, len);
}

/* ---- loading one file ------------------------------------------------------------- */

static void entry_free(fr_loader_entry *e)
{
    if (!e)
        return;
    free(e->plugin.name);
    free(e->plugin.path);
    free(e->plugin.origin);
    free(e);
}

static fr_loader_entry *find_by_path(const fr_loader *l, const char *path)
{
    for (size_t i = 0; i < l->n_entries; i++)
        if (strcmp(l->entries[i]->plugin.path, path) == 0)
            return l->entries[i];
    return NULL;
}

static fr_loader_entry *find_searched(const fr_loader *l, const char *name)
{
    for (size_t i = 0; i < l->n_entries; i++)
        if (l->entries[i]->searched && strcmp(l->entries[i]->plugin.name, name) == 0)
            return l->entries[i];
    return NULL;
}

/* Gate 1: checks the file before dlopen.  On success returns an open descriptor of the
 * very file that was checked (for the digest), its fstat in *fst_out, and its canonical path
 * in *real (caller frees; dlopen must load that path, not `path`, whose links might be
 * swapped), else -1 with reason and *status. */
static int precheck(const char *path, char *reason, size_t len, int *status, char **real,
                    struct stat *fst_out)
{
    struct stat st;
    *status = FR_E_CONFIG;
    *real = NULL;
    /* stat before open: a device node must not be opened at all. */
    if (stat(path, &st) != 0) {
        set_err(reason, len, "cannot stat: %s", strerror(errno));
        *status = errno == ENOENT ? FR_E_NOT_FOUND : FR_E_IO;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(reason, len, "not a regular file");
        return -1;
    }
    /* O_NONBLOCK: harmless for a regular file, and keeps us from hanging should the
     * path have been swapped for a FIFO since stat(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat fst;
    if (fd < 0) {
        set_err(reason, len, "cannot open: %s", strerror(errno));
        *status = FR_E_IO;
        return -1;
    }
    /* From here on every check is of the open file and its canonical path. */
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_dev != st.st_dev ||
        fst.st_ino != st.st_ino || !(*real = fd_realpath(fd, path))) {
        set_err(reason, len, "file changed while being checked");
        close(fd);
        return -1;
    }
    if (!file_trusted(&fst, *real, path, reason, len)) {
        *status = FR_E_PERMISSION;
        goto fail;
    }
    if (!elf_intact(fd, fst.st_size, reason, len))
        goto fail;
    *fst_out = fst;
    return fd;
fail:
    free(*real);
    *real = NULL;
    close(fd);
    return -1;
}

/* Loads `path` as plugin `name` (already validated).  Returns FR_OK and a new entry, or
 * a status with reason (without the "plugin PATH: " prefix). */
static int load_path(const char *path, const char *name, const char *origin, fr_loader_entry **out,
                     char *reason, size_t len)
{
    int status;
    char *real;
    struct stat st;
    int fd = precheck(path, reason, len, &status, &real, &st);
    if (fd < 0)
        return status;

    dlerror();
    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *msg = dlerror();
        msg = msg ? msg : "unknown error";
        /* dlerror() usually repeats the path: "PATH: invalid ELF header". */
        size_t plen = strlen(real);
        if (strncmp(msg, real, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
            msg += plen + 2;
        set_err(reason, len, "cannot load: %s", msg);
        free(real);
        close(fd);
        return FR_E_CONFIG;
    }
    free(real);
    dlerror();
    void *sym = dlsym(handle, FR_PLUGIN_SYMBOL);
    if (!sym) {
        set_err(reason, len, "missing entry symbol %s (not a FluxRoute plugin?)", FR_PLUGIN_SYMBOL);
        goto refuse;
    }
    /* dlsym() also searches the object's dependencies: the entry must be the file's own,
     * or we would be checking (and naming) some other plugin. */
    Dl_info info;
    struct link_map *lm = NULL;
    if (dladdr(sym, &info) && dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && info.dli_fname &&
        lm->l_name && strcmp(info.dli_fname, lm->l_name) != 0) {
        set_err(reason, len, "entry symbol %s comes from another object (%s)", FR_PLUGIN_SYMBOL,
                info.dli_fname);
        goto refuse;
    }
    fr_plugin_entry_fn entry;
    /* POSIX guarantees function pointers round-trip through void * for dlsym. */
    memcpy(&entry, &sym, sizeof entry);
    const fr_plugin *desc = entry();
    if (!check_descriptor(desc, name, reason, len))
        goto refuse;

    fr_loader_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->plugin.name = strdup(name)) || !(e->plugin.path = strdup(path)) ||
        !(e->plugin.origin = strdup(origin ? origin : ""))) {
        entry_free(e);
        set_err(reason, len, "out of memory");
        dlclose(handle);
        close(fd);
        return FR_E_NOMEM;
    }
    if (file_digest(fd, &st, e->plugin.sha256) != 0) {
        entry_free(e);
        set_err(reason, len, "cannot read file for its digest: %s", strerror(errno));
        dlclose(handle);
        close(fd);
        return FR_E_IO;
    }
    close(fd);
    e->plugin.desc = desc;
    e->plugin.handle = handle;
    *out = e;
    return FR_OK;

refuse:
    dlclose(handle);
    close(fd);
    return FR_E_CONFIG;
}

static int add_entry(fr_loader *l, fr_loader_entry *e)
{
    if (l->n_entries == l->cap_entries) {
        size_t cap = l->cap_entries ? 2 * l->cap_entries : 8;
        fr_loader_entry **p = realloc(l->entries, cap * sizeof *p);
        if (!p)
            return FR_E_NOMEM;
        l->entries = p;
        l->cap_entries = cap;
    }
    l->entries[l->n_entries++] = e;
    return FR_OK;
}

/* Returns the cached entry for `path` or loads it.  `searched` marks an entry the search
 * path resolved.  On failure, reason holds the bare reason. */
static int get_or_load(fr_loader *l, const char *path, const char *name, const char *origin,
                       int searched, fr_loader_entry **out, char *reason, size_t len)
{
    fr_loader_entry *e = find_by_path(l, path);
    if (!e) {
        int rc = load_path(path, name, origin, &e, reason, len);
        if (rc != FR_OK)
            return rc;
        if (add_entry(l, e) != FR_OK) {
            /* The handle stays open: the plugin is loaded, only our record of it is lost.
             * Its constructors may have run, so closing would not undo anything. */
            entry_free(e);
            set_err(reason, len, "out of memory");
            return FR_E_NOMEM;
        }
    }
    if (searched)
        e->searched = 1;
    *out = e;
    return FR_OK;
}

/* ---- public API ------------------------------------------------------------------- */

fr_loader *fr__loader_new(void)
{
    fr_loader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->search_path = strdup("");
    if (!l->search_path) {
        free(l);
        return NULL;
    }
    return l;
}

static int add_dir(fr_loader *l, const char *dir, const char *origin, int absolute_only)
{
    if (!l || !dir || !*dir)
        return FR_E_INVALID;
    if (l->n_dirs == l->cap_dirs) {
        size_t cap = l->cap_dirs ? 2 * l->cap_dirs : 4;
        fr_search_dir *p = realloc(l->dirs, cap * sizeof *p);
        if (!p)
            return FR_E_NOMEM;
        l->dirs = p;
        l->cap_dirs = cap;
    }
    char *sp = NULL;
    if (asprintf(&sp, "%s%s%s", l->search_path, l->n_dirs ? ":" : "", dir) < 0)
        return FR_E_NOMEM;
    fr_search_dir d = {strdup(dir), strdup(origin ? origin : ""), NULL};
    int oom = !d.dir || !d.origin;
    /* A relative entry of a path list would follow the working directory wherever the
     * program runs, as "." in $PATH does. */
    if (!oom && absolute_only && dir[0] != '/')
        oom = asprintf(&d.refused,
                       "%s entry \"%s\" is a relative path; only absolute directories are "
                       "searched",
                       d.origin, dir) < 0;
    if (oom) {
        free(d.dir);
        free(d.origin);
        free(sp);
        return FR_E_NOMEM;
    }
    free(l->search_path);
    l->search_path = sp;
    l->dirs[l->n_dirs++] = d;
    return FR_OK;
}

int fr__loader_add_dir(fr_loader *l, const char *dir, const char *origin)
{
    return add_dir(l, dir, origin, 0);
}

int fr__loader_add_path_list(fr_loader *l, const char *list, const char *origin)
{
    if (!l || !list)
        return FR_E_INVALID;
    const char *p = list;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n > 0) {
            char *dir = strndup(p, n);
            if (!dir)
                return FR_E_NOMEM;
            int rc = add_dir(l, dir, origin, 1);
            free(dir);
            if (rc != FR_OK)
                return rc;
        }
        if (!colon)
            return FR_OK;
        p = colon + 1;
    }
}

static char builtin_dir[PATH_MAX + sizeof "/plugins"];
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

/* 1 when `exe_dir` is the build tree's top directory, its .libs, or anything below its
 * tests/ (test programs and their libtool .libs). */
static int in_build_tree(const char *exe_dir, const char *build)
{
    size_t n = strlen(build);
    if (strncmp(exe_dir, build, n) != 0)
        return 0;
    const char *rest = exe_dir + n;
    return *rest == '\0' || strcmp(rest, "/.libs") == 0 || strcmp(rest, "/tests") == 0 ||
           strncmp(rest, "/tests/", 7) == 0;
}

static void builtin_dir_init(void)
{
    const char *dir = FR_PLUGIN_INSTALL_DIR;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash && slash != exe)
            *slash = '\0';
        /* /proc/self/exe is canonical; the configured build dir may contain symlinks. */
        char *build = realpath(FR_BUILD_DIR, NULL);
        if ((build && in_build_tree(exe, build)) || in_build_tree(exe, FR_BUILD_DIR))
            dir = FR_BUILD_DIR "/plugins";
        free(build);
    }
    snprintf(builtin_dir, sizeof builtin_dir, "%s", dir);
}

const char *fr__loader_builtin_dir(void)
{
    pthread_once(&builtin_once, builtin_dir_init);
    return builtin_dir;
}

/* Writes "plugin PATH: REASON" into err. */
static void refusal(char *err, size_t errlen, const char *path, const char *reason)
{
    set_err(err, errlen, "plugin %s: %s", path, reason);
}

int fr__loader_get(fr_loader *l, const char *name, const fr_loaded_plugin **out, char *err,
                   size_t errlen)
{
    if (!l || !name || !out) {
        set_err(err, errlen, "plugin loader: invalid argument");
        return FR_E_INVALID;
    }
    if (!valid_name(name)) {
        set_err(err, errlen, "plugin name \"%.64s\" is invalid (expected [a-z][a-z0-9_]*)", name);
        return FR_E_INVALID;
    }
    fr_loader_entry *e = find_searched(l, name);
    if (e) {
        *out = &e->plugin;
        return FR_OK;
    }
    for (size_t i = 0; i < l->n_dirs; i++) {
        /* A refused entry stops the search like a refused file: what it would have found
         * must not silently give way to a later directory's plugin. */
        if (l->dirs[i].refused) {
            set_err(err, errlen, "plugin \"%s\": refused: %s", name, l->dirs[i].refused);
            return FR_E_PERMISSION;
        }
        char *path = path_join(l->dirs[i].dir, name, ".so");
        if (!path) {
            set_err(err, errlen, "plugin \"%s\": out of memory", name);
            return FR_E_NOMEM;
        }
        struct stat st;
        if (lstat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
            free(path);
            continue;
        }
        /* First match wins, as with PATH: a refused file stops the search rather than
         * silently falling through to a later directory. */
        char reason[512];
        int rc = get_or_load(l, path, name, l->dirs[i].origin, 1, &e, reason, sizeof reason);
        if (rc == FR_OK)
            *out = &e->plugin;
        else
            refusal(err, errlen, path, reason);
        free(path);
        return rc;
    }
    set_err(err, errlen, "plugin \"%s\" not found (searched: %s)", name,
            l->n_dirs ? l->search_path : "no plugin directories");
    return FR_E_NOT_FOUND;
}

int fr__loader_load_file(fr_loader *l, const char *path, const fr_loaded_plugin **out, char *err,
                         size_t errlen)
{
    if (!l || !path || !out) {
        set_err(err, errlen, "plugin loader: invalid argument");
        return FR_E_INVALID;
    }
    /* dlopen() of a name without '/' would search the library path, not the file we
     * checked: make it explicitly relative. */
    char *dotted = NULL;
    if (!strchr(path, '/')) {
        if (asprintf(&dotted, "./%s", path) < 0) {
            set_err(err, errlen, "plugin %s: out of memory", path);
            return FR_E_NOMEM;
        }
        path = dotted;
    }
    char *name = plugin_name_of(path);
    if (!name) {
        set_err(err, errlen, "plugin %s: out of memory", path);
        free(dotted);
        return FR_E_NOMEM;
    }
    char reason[512];
    int rc;
    fr_loader_entry *e = NULL;
    if (!valid_name(name)) {
        set_err(reason, sizeof reason,
                "file name \"%.64s\" is not a valid plugin name (expected [a-z][a-z0-9_]*.so)",
                name);
        rc = FR_E_INVALID;
    } else {
        rc = get_or_load(l, path, name, "file", 0, &e, reason, sizeof reason);
    }
    if (rc == FR_OK)
        *out = &e->plugin;
    else
        refusal(err, errlen, path, reason);
    free(name);
    free(dotted);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted *.so names in `dir` (new array of new strings).  A missing or unreadable
 * directory lists nothing. */
static int list_dir(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return FR_OK;
    size_t cap = 0;
    int rc = FR_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(*names, cap * sizeof *p);
            if (!p) {
                rc = FR_E_NOMEM;
                break;
            }
            *names = p;
        }
        if (!((*names)[*n] = strdup(de->d_name))) {
            rc = FR_E_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_str);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Fills one listing item for `path` in search dir `sd`; earlier items decide shadowing. */
static int list_one(fr_loader *l, const fr_search_dir *sd, const char *file,
                    fr_plugin_listing *items, size_t n_items)
{
    fr_plugin_listing *it = &items[n_items];
    memset(it, 0, sizeof *it);
    it->path = path_join(sd->dir, file, "");
    it->name = plugin_name_of(file);
    it->origin = strdup(sd->origin);
    if (!it->path || !it->name || !it->origin)
        return FR_E_NOMEM;
    for (size_t j = 0; j < n_items; j++)
        if (strcmp(items[j].name, it->name) == 0) {
            return (it->shadowed_by = strdup(items[j].path)) ? FR_OK : FR_E_NOMEM;
        }
    char reason[512];
    fr_loader_entry *e = NULL;
    int rc;
    if (!valid_name(it->name)) {
        set_err(reason, sizeof reason,
                "file name \"%.64s\" is not a valid plugin name (expected [a-z][a-z0-9_]*.so)",
                it->name);
        rc = FR_E_INVALID;
    } else {
        rc = get_or_load(l, it->path, it->name, sd->origin, 1, &e, reason, sizeof reason);
    }
    if (rc == FR_E_NOMEM)
        return rc;
    if (rc == FR_OK)
        it->plugin = &e->plugin;
    else if (!(it->refusal = strdup(reason)))
        return FR_E_NOMEM;
    return FR_OK;
}

/* Grows the listing by one zeroed item. */
static fr_plugin_listing *listing_push(fr_plugin_listing **items, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        fr_plugin_listing *p = realloc(*items, ncap * sizeof *p);
        if (!p)
            return NULL;
        *items = p;
        *cap = ncap;
    }
    fr_plugin_listing *it = &(*items)[(*n)++];
    memset(it, 0, sizeof *it);
    return it;
}

/* A refused search entry is listed once, as "-" with the reason. */
static int list_refused_dir(const fr_search_dir *sd, fr_plugin_listing **items, size_t *n,
                            size_t *cap)
{
    fr_plugin_listing *it = listing_push(items, n, cap);
    if (!it)
        return FR_E_NOMEM;
    it->name = strdup("-");
    it->path = strdup(sd->dir);
    it->origin = strdup(sd->origin);
    it->refusal = strdup(sd->refused);
    return it->name && it->path && it->origin && it->refusal ? FR_OK : FR_E_NOMEM;
}

int fr__loader_list(fr_loader *l, fr_plugin_listing **out, size_t *n)
{
    if (!l || !out || !n)
        return FR_E_INVALID;
    *out = NULL;
    *n = 0;
    fr_plugin_listing *items = NULL;
    size_t n_items = 0, cap = 0;
    int rc = FR_OK;
    for (size_t i = 0; i < l->n_dirs && rc == FR_OK; i++) {
        char **names;
        size_t n_names;
        if (l->dirs[i].refused) {
            rc = list_refused_dir(&l->dirs[i], &items, &n_items, &cap);
            continue;
        }
        rc = list_dir(l->dirs[i].dir, &names, &n_names);
        for (size_t k = 0; k < n_names && rc == FR_OK; k++) {
            /* Pushed before filling: a partly filled item must still be freed. */
            if (!listing_push(&items, &n_items, &cap)) {
                rc = FR_E_NOMEM;
                break;
            }
            rc = list_one(l, &l->dirs[i], names[k], items, n_items - 1);
        }
        free_names(names, n_names);
    }
    if (rc != FR_OK) {
        fr__plugin_listing_free(items, n_items);
        return rc;
    }
    *out = items;
    *n = n_items;
    return FR_OK;
}

void fr__plugin_listing_free(fr_plugin_listing *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].name);
        free(items[i].path);
        free(items[i].origin);
        free(items[i].refusal);
        free(items[i].shadowed_by);
    }
    free(items);
}

const char *fr__loader_search_path(fr_loader *l)
{
    return l ? l->search_path : "";
}

size_t fr__loader_count(const fr_loader *l)
{
    return l ? l->n_entries : 0;
}

void fr__loader_free(fr_loader *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_dirs; i++) {
        free(l->dirs[i].dir);
        free(l->dirs[i].origin);
        free(l->dirs[i].refused);
    }
    free(l->dirs);
    for (size_t i = 0; i < l->n_entries; i++)
        entry_free(l->entries[i]);
    free(l->entries);
    free(l->search_path);
    free(l);
}
