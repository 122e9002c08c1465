/* Unit tests of the plugin loader (core/plugin/loader.c).
 *
 * The test plugins are built as tests/plugins/.libs/NAME.so (tests/plugins/plugins.am); each
 * test copies the ones it needs into its own directory under tests/tmp/loader-PID/,
 * under the file name and with the mode the case needs, and asserts the exact result
 * and refusal line ("plugin PATH: REASON"). */
#include <CUnit/Basic.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/loader.h"

/* Sized so that every path derived from them fits in PATH_MAX. */
static char g_build[1024]; /* abs build dir */
static char g_tmp[1280];   /* this run's scratch dir */

/* ---- fixtures --------------------------------------------------------------------- */

/* Formats a path below g_tmp into a fresh static slot (32 slots in rotation, enough for
 * one test's worth of paths). */
static const char *tp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tp(const char *fmt, ...)
{
    static char slots[32][PATH_MAX];
    static int next;
    char *out = slots[next++ % 32];
    char rel[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(out, PATH_MAX, "%s/%s", g_tmp, rel);
    return out;
}

static void mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
    chmod(buf, mode);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    if (len)
        CU_ASSERT_FATAL(fwrite(data, 1, len, f) == len);
    fclose(f);
    chmod(path, mode);
}

/* Copies the built test plugin `built`.so to `dst` (at most `limit` bytes) with `mode`. */
static void copy_plugin_n(const char *built, const char *dst, mode_t mode, size_t limit)
{
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/tests/plugins/.libs/%s.so", g_build, built);
    FILE *in = fopen(src, "rb");
    if (!in)
        fprintf(stderr, "cannot open test plugin %s: %s\n", src, strerror(errno));
    CU_ASSERT_FATAL(in != NULL);
    char *buf = malloc(limit);
    CU_ASSERT_FATAL(buf != NULL);
    size_t n = fread(buf, 1, limit, in);
    fclose(in);
    write_file(dst, buf, n, mode);
    free(buf);
}

static void copy_plugin(const char *built, const char *dst, mode_t mode)
{
    copy_plugin_n(built, dst, mode, 64u << 20);
}

/* A loader searching the one directory `dir`. */
static fr_loader *loader_for(const char *dir)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FATAL(fr__loader_add_dir(l, dir, "--plugin-dir") == 0);
    return l;
}

/* A fresh dir `sub` holding built plugin `built` as `built`.so (mode 0755), and a loader
 * searching it.  The plugin file's path goes to file[PATH_MAX]. */
static fr_loader *loader_with(const char *sub, const char *built, char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", tp("%s", sub));
    snprintf(file, PATH_MAX, "%s", tp("%s/%s.so", sub, built));
    mkdirs(dir, 0755);
    copy_plugin(built, file, 0755);
    return loader_for(dir);
}

/* fr__loader_get that must succeed; prints the refusal otherwise. */
static const fr_loaded_plugin *get_ok(fr_loader *l, const char *name)
{
    const fr_loaded_plugin *p = NULL;
    char err[2048] = "";
    int rc = fr__loader_get(l, name, &p, err, sizeof err);
    if (rc != FR_OK)
        fprintf(stderr, "\n  unexpected refusal: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, FR_OK);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

/* Asserts that err is exactly "plugin PATH: REASON" on one line. */
static void assert_refusal(const char *err, const char *path, const char *reason)
{
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "plugin %s: %s", path, reason);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", err, want);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT(strchr(err, '\n') == NULL);
}

/* Asserts that err starts with "plugin PATH: " + prefix, on one line. */
static void assert_refusal_prefix(const char *err, const char *path, const char *prefix)
{
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "plugin %s: %s", path, prefix);
    if (strncmp(err, want, strlen(want)) != 0)
        fprintf(stderr, "\n  got:  %s\n  want: %s...\n", err, want);
    CU_ASSERT(strncmp(err, want, strlen(want)) == 0);
    CU_ASSERT(strchr(err, '\n') == NULL);
}

/* sha256sum(1) of a file: an implementation independent of the loader's. */
static void sha256sum_of(const char *path, char out[65])
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_FATAL(p != NULL);
    out[0] = '\0';
    CU_ASSERT(fscanf(p, "%64s", out) == 1);
    pclose(p);
}

/* ---- good plugins, caching, digest ------------------------------------------------ */

static void test_good_agent(void)
{
    char file[PATH_MAX];
    fr_loader *l = loader_with("good", "good_agent", file);
    const fr_loaded_plugin *p = get_ok(l, "good_agent");
    CU_ASSERT_STRING_EQUAL(p->name, "good_agent");
    CU_ASSERT_STRING_EQUAL(p->path, file);
    CU_ASSERT_STRING_EQUAL(p->origin, "--plugin-dir");
    CU_ASSERT_EQUAL(p->desc->kind, FR_PLUGIN_AGENT);
    CU_ASSERT_STRING_EQUAL(p->desc->version, "1.2.3");
    CU_ASSERT_STRING_EQUAL(p->desc->options[5].name, "extra");
    CU_ASSERT(p->handle != NULL);
    CU_ASSERT_EQUAL(fr__loader_count(l), 1);

    CU_ASSERT_EQUAL(strlen(p->sha256), 64);
    CU_ASSERT_EQUAL(strspn(p->sha256, "0123456789abcdef"), 64);
    char want[65];
    sha256sum_of(file, want);
    CU_ASSERT_STRING_EQUAL(p->sha256, want);
    fr__loader_free(l);
}

/* Digests are kept by file identity: a second loader of the same file gets the same one
 * (not read again), and a file changed in place is read again, whatever its mtime. */
static void test_digest_kept_and_renewed(void)
{
    char file[PATH_MAX], want[65], first[65];
    fr_loader *a = loader_with("digest", "good_agent", file);
    snprintf(first, sizeof first, "%s", get_ok(a, "good_agent")->sha256);
    fr_loader *b = loader_for(tp("digest"));
    CU_ASSERT_STRING_EQUAL(get_ok(b, "good_agent")->sha256, first);
    fr__loader_free(b);
    /* Change the last byte in place (the top byte of the last section header's sh_entsize,
     * which loading ignores): same size; then put the old mtime back.  Only the ctime the
     * kernel sets tells the change. */
    struct stat before, after;
    CU_ASSERT_FATAL(stat(file, &before) == 0);
    FILE *f = fopen(file, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fseek(f, -1, SEEK_END) == 0);
    int last = fgetc(f);
    CU_ASSERT(fseek(f, -1, SEEK_END) == 0);
    fputc(last ^ 1, f);
    fclose(f);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    CU_ASSERT(utimensat(AT_FDCWD, file, times, 0) == 0);
    CU_ASSERT_FATAL(stat(file, &after) == 0);
    CU_ASSERT_EQUAL(after.st_size, before.st_size);
    CU_ASSERT_EQUAL(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    fr_loader *c = loader_for(tp("digest"));
    sha256sum_of(file, want);
    CU_ASSERT_STRING_EQUAL(get_ok(c, "good_agent")->sha256, want);
    CU_ASSERT_STRING_NOT_EQUAL(want, first);
    fr__loader_free(c);
    fr__loader_free(a);
}

static void test_good_provider_newer_minor(void)
{
    char file[PATH_MAX];
    fr_loader *l = loader_with("prov", "good_provider", file);
    const fr_loaded_plugin *p = get_ok(l, "good_provider");
    CU_ASSERT_EQUAL(p->desc->kind, FR_PLUGIN_PROVIDER);
    CU_ASSERT_EQUAL(FR_ABI_VERSION_MINOR(p->desc->abi_version), 7);
    fr__loader_free(l);
}

static void test_cache(void)
{
    char file[PATH_MAX];
    fr_loader *l = loader_with("cache", "good_agent", file);
    const fr_loaded_plugin *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &a, NULL, 0), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &b, NULL, 0), FR_OK);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_EQUAL(a, b);
    CU_ASSERT_EQUAL(fr__loader_load_file(l, file, &c, NULL, 0), FR_OK);
    CU_ASSERT_PTR_EQUAL(a, c);
    CU_ASSERT_EQUAL(fr__loader_count(l), 1);
    fr__loader_free(l);
}

/* A bare file name is the file in the working directory, never a library-path lookup
 * (dlopen("x.so") would search LD_LIBRARY_PATH and the system dirs). */
static void test_load_file_relative(void)
{
    char old_cwd[PATH_MAX];
    CU_ASSERT_FATAL(getcwd(old_cwd, sizeof old_cwd) != NULL);
    mkdirs(tp("rel"), 0755);
    copy_plugin("good_provider", tp("rel/good_provider.so"), 0755);
    copy_plugin("bad_abi", tp("rel/bad_abi.so"), 0755);
    CU_ASSERT_FATAL(chdir(tp("rel")) == 0);
    fr_loader *l = fr__loader_new();
    const fr_loaded_plugin *p = NULL;
    char err[1024] = "";
    CU_ASSERT_EQUAL(fr__loader_load_file(l, "good_provider.so", &p, err, sizeof err), FR_OK);
    if (p) {
        CU_ASSERT_STRING_EQUAL(p->path, "./good_provider.so");
        CU_ASSERT_STRING_EQUAL(p->origin, "file");
        CU_ASSERT_EQUAL(p->desc->kind, FR_PLUGIN_PROVIDER);
    }
    CU_ASSERT_EQUAL(fr__loader_load_file(l, "bad_abi.so", &p, err, sizeof err), FR_E_CONFIG);
    CU_ASSERT_STRING_EQUAL(err, "plugin ./bad_abi.so: ABI 2.0 not supported (host ABI 1.2)");
    fr__loader_free(l);
    CU_ASSERT_FATAL(chdir(old_cwd) == 0);
}

/* ---- refusals after dlopen: one built plugin per defect --------------------------- */

static void test_descriptor_refusals(void)
{
    char too_small[128];
    snprintf(too_small, sizeof too_small, "descriptor too small (16 bytes, need at least %zu)",
             (size_t)FR_PLUGIN_MIN_SIZE);
    static const char *const cases[][3] = {
        /* built plugin, file name, reason */
        {"bad_abi", "bad_abi", "ABI 2.0 not supported (host ABI 1.2)"},
        {"short_struct", "short_struct", NULL /* too_small */},
        {"no_entry", "no_entry",
         "missing entry symbol fluxroute_plugin_v1 (not a FluxRoute plugin?)"},
        {"misnamed", "misnamed",
         "descriptor name \"someone_else\" does not match file name \"misnamed.so\""},
        {"good_agent", "renamed",
         "descriptor name \"good_agent\" does not match file name \"renamed.so\""},
        {"dup_options", "dup_options", "option \"text\" is declared twice"},
        {"null_desc", "null_desc", "fluxroute_plugin_v1 returned no descriptor (NULL)"},
        {"bad_kind", "bad_kind", "unknown plugin kind 7"},
        {"no_invoke", "no_invoke", "agent plugin has no invoke callback"},
        {"no_complete", "no_complete", "provider plugin has no complete callback"},
        {"reserved_set", "reserved_set", "reserved slot 2 is not NULL"},
        {"opt_bad_name", "opt_bad_name",
         "option 0: invalid name \"Bad-Name\" (expected [a-z][a-z0-9_]*)"},
        {"opt_bad_type", "opt_bad_type", "option \"text\" has unknown type 99"},
        {"opt_offset", "opt_offset",
         "option \"count\" at offset 16 (8 bytes) lies beyond config_size 16"},
    };
    const char *dir = tp("desc");
    mkdirs(dir, 0755);
    fr_loader *l = loader_for(dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/%s.so", dir, cases[i][1]);
        copy_plugin(cases[i][0], file, 0755);
        const fr_loaded_plugin *p = NULL;
        char err[1024] = "";
        CU_ASSERT_EQUAL(fr__loader_get(l, cases[i][1], &p, err, sizeof err), FR_E_CONFIG);
        CU_ASSERT_PTR_NULL(p);
        assert_refusal(err, file, cases[i][2] ? cases[i][2] : too_small);
        /* Never half-loaded: the refused object was dlclose()d again. */
        void *h = dlopen(file, RTLD_NOW | RTLD_NOLOAD);
        CU_ASSERT_PTR_NULL(h);
        if (h)
            dlclose(h);
        /* Explicit loading refuses the same way. */
        err[0] = '\0';
        CU_ASSERT_EQUAL(fr__loader_load_file(l, file, &p, err, sizeof err), FR_E_CONFIG);
        assert_refusal(err, file, cases[i][2] ? cases[i][2] : too_small);
    }
    CU_ASSERT_EQUAL(fr__loader_count(l), 0);
    fr__loader_free(l);
}

/* ---- refusals before dlopen, and files that are no shared object ------------------ */

static void test_file_refusals(void)
{
    const char *dir = tp("files");
    mkdirs(dir, 0755);
    fr_loader *l = loader_for(dir);
    const fr_loaded_plugin *p = NULL;
    char err[1024];

    copy_plugin("good_agent", tp("files/world.so"), 0666);
    CU_ASSERT_EQUAL(fr__loader_get(l, "world", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("files/world.so"),
                   "refused: file is writable by group and others (mode 0666)");

    copy_plugin("good_agent", tp("files/group.so"), 0775);
    CU_ASSERT_EQUAL(fr__loader_get(l, "group", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("files/group.so"), "refused: file is writable by group (mode 0775)");

    mkdirs(tp("files/adir.so"), 0755);
    CU_ASSERT_EQUAL(fr__loader_get(l, "adir", &p, err, sizeof err), FR_E_CONFIG);
    assert_refusal(err, tp("files/adir.so"), "not a regular file");

    CU_ASSERT_EQUAL_FATAL(mkfifo(tp("files/fifo.so"), 0644), 0);
    CU_ASSERT_EQUAL(fr__loader_get(l, "fifo", &p, err, sizeof err), FR_E_CONFIG);
    assert_refusal(err, tp("files/fifo.so"), "not a regular file");

    write_file(tp("files/empty.so"), "", 0, 0644);
    CU_ASSERT_EQUAL(fr__loader_get(l, "empty", &p, err, sizeof err), FR_E_CONFIG);
    assert_refusal_prefix(err, tp("files/empty.so"), "cannot load: ");

    static const char text[] = "this is not an ELF file\n";
    write_file(tp("files/text.so"), text, sizeof text - 1, 0644);
    CU_ASSERT_EQUAL(fr__loader_get(l, "text", &p, err, sizeof err), FR_E_CONFIG);
    assert_refusal_prefix(err, tp("files/text.so"), "cannot load: ");

    /* A truncated shared object: the ELF header is intact, the rest is missing. */
    copy_plugin_n("good_agent", tp("files/trunc.so"), 0755, 2048);
    CU_ASSERT_EQUAL(fr__loader_get(l, "trunc", &p, err, sizeof err), FR_E_CONFIG);
    assert_refusal_prefix(err, tp("files/trunc.so"), "truncated or corrupt ELF file (segment ");

    CU_ASSERT_EQUAL(fr__loader_count(l), 0);
    fr__loader_free(l);
}

/* The canonical form of tp(...) paths, as the loader names directories. */
static const char *real_tp(const char *rel)
{
    static char out[4][PATH_MAX];
    static int next;
    char *slot = out[next++ % 4];
    char *r = realpath(tp("%s", rel), NULL);
    CU_ASSERT_FATAL(r != NULL);
    snprintf(slot, PATH_MAX, "%s", r);
    free(r);
    return slot;
}

/* Directory trust, as OpenSSH checks its files: the plugin's own directory and every
 * one above it owned by root or us and writable by no one else; a sticky parent such as
 * /tmp is accepted, a sticky own directory is not. */
static void test_dir_trust(void)
{
    static const struct {
        const char *parent, *own;
        mode_t parent_mode, own_mode;
        const char *bad_dir; /* which directory the refusal names (NULL: loads) */
        const char *why;
    } cases[] = {
        {"t_gw", "own", 0755, 0775, "t_gw/own", "writable by group (mode 0775)"},
        {"t_ww", "own", 0755, 0777, "t_ww/own", "writable by group and others (mode 0777)"},
        {"t_ow", "own", 0755, 0757, "t_ow/own", "writable by others (mode 0757)"},
        {"t_sticky_own", "own", 0755, 01777, "t_sticky_own/own",
         "writable by group and others (mode 1777); the sticky bit is accepted on parent "
         "directories only"},
        {"t_wwp", "own", 0777, 0755, "t_wwp", "writable by group and others (mode 0777)"},
        {"t_gwp", "own", 0775, 0755, "t_gwp", "writable by group (mode 0775)"},
        {"t_tmp", "own", 01777, 0755, NULL, NULL}, /* like /tmp */
        {"t_tmpg", "own", 01770, 0755, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char own[PATH_MAX], file[PATH_MAX];
        snprintf(own, sizeof own, "%s", tp("%s/%s", cases[i].parent, cases[i].own));
        snprintf(file, sizeof file, "%s", tp("%s/%s/good_agent.so", cases[i].parent, cases[i].own));
        mkdirs(own, 0755);
        copy_plugin("good_agent", file, 0755);
        chmod(own, cases[i].own_mode);
        chmod(tp("%s", cases[i].parent), cases[i].parent_mode);
        fr_loader *l = loader_for(own);
        const fr_loaded_plugin *p = NULL;
        char err[2048] = "";
        int rc = fr__loader_get(l, "good_agent", &p, err, sizeof err);
        if (!cases[i].bad_dir) {
            if (rc != FR_OK)
                fprintf(stderr, "\n  case %s: unexpected refusal: %s\n", cases[i].parent, err);
            CU_ASSERT_EQUAL(rc, FR_OK);
        } else {
            char reason[PATH_MAX + 256];
            snprintf(reason, sizeof reason, "refused: directory %s is %s",
                     real_tp(cases[i].bad_dir), cases[i].why);
            CU_ASSERT_EQUAL(rc, FR_E_PERMISSION);
            assert_refusal(err, file, reason);
        }
        fr__loader_free(l);
        /* Back to safe modes: later tests and the clean-up walk these dirs. */
        chmod(own, 0755);
        chmod(tp("%s", cases[i].parent), 0755);
    }

    /* Both ends of a symlink count: a link in a trusted dir to a file in a
     * group-writable one, and a link in a group-writable dir to a trusted file. */
    mkdirs(tp("t_links/ok"), 0755);
    mkdirs(tp("t_links/gw"), 0755);
    copy_plugin("good_agent", tp("t_links/ok/good_agent.so"), 0755);
    copy_plugin("good_provider", tp("t_links/gw/good_provider.so"), 0755);
    CU_ASSERT_EQUAL_FATAL(symlink("../gw/good_provider.so", tp("t_links/ok/good_provider.so")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink("../ok/good_agent.so", tp("t_links/gw/good_agent.so")), 0);
    chmod(tp("t_links/gw"), 0775);
    char reason[PATH_MAX + 128];
    snprintf(reason, sizeof reason, "refused: directory %s is writable by group (mode 0775)",
             real_tp("t_links/gw"));
    fr_loader *l = loader_for(tp("t_links/ok"));
    const fr_loaded_plugin *p = NULL;
    char err[2048] = "";
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_provider", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("t_links/ok/good_provider.so"), reason);
    fr__loader_free(l);
    l = loader_for(tp("t_links/gw"));
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("t_links/gw/good_agent.so"), reason);
    fr__loader_free(l);
    chmod(tp("t_links/gw"), 0755);
}

/* Owned by another user: the file, or a directory above it.  Needs root to make such a
 * file; otherwise only this case is skipped, saying why. */
static void test_owner_trust(void)
{
    if (geteuid() != 0) {
        fprintf(stderr,
                "\n  skipped: files owned by another user need root to create "
                "(running as uid %u)\n",
                (unsigned)geteuid());
        return;
    }
    const uid_t nobody = 65534;
    mkdirs(tp("t_owner/dir"), 0755);
    copy_plugin("good_agent", tp("t_owner/good_agent.so"), 0755);
    copy_plugin("good_agent", tp("t_owner/dir/good_agent.so"), 0755);
    CU_ASSERT_EQUAL_FATAL(chown(tp("t_owner/good_agent.so"), nobody, (gid_t)-1), 0);
    CU_ASSERT_EQUAL_FATAL(chown(tp("t_owner/dir"), nobody, (gid_t)-1), 0);

    fr_loader *l = loader_for(tp("t_owner"));
    const fr_loaded_plugin *p = NULL;
    char err[2048] = "";
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal_prefix(err, tp("t_owner/good_agent.so"), "refused: file is owned by uid 65534");
    CU_ASSERT(strstr(err, "not by root or the current user (uid 0") != NULL);
    fr__loader_free(l);

    l = loader_for(tp("t_owner/dir"));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "refused: directory %s is owned by uid 65534",
             real_tp("t_owner/dir"));
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal_prefix(err, tp("t_owner/dir/good_agent.so"), want);
    fr__loader_free(l);
}

/* A relative FLUXROUTE_PLUGIN_PATH entry is refused (it would follow the working
 * directory); a search that reaches it stops there, and the listing shows it.  A
 * relative --plugin-dir is the user's own word and resolves against the working
 * directory. */
static void test_relative_path_list(void)
{
    char old_cwd[PATH_MAX];
    CU_ASSERT_FATAL(getcwd(old_cwd, sizeof old_cwd) != NULL);
    mkdirs(tp("t_rel/plugins"), 0755);
    copy_plugin("good_agent", tp("t_rel/plugins/good_agent.so"), 0755);
    CU_ASSERT_FATAL(chdir(tp("t_rel")) == 0);

    fr_loader *l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(fr__loader_add_path_list(l, "plugins:/nonexistent", "FLUXROUTE_PLUGIN_PATH"),
                    FR_OK);
    const fr_loaded_plugin *p = NULL;
    char err[1024] = "";
    static const char why[] = "FLUXROUTE_PLUGIN_PATH entry \"plugins\" is a relative path; "
                              "only absolute directories are searched";
    char want[512];
    snprintf(want, sizeof want, "plugin \"good_agent\": refused: %s", why);
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_E_PERMISSION);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_EQUAL(fr__loader_count(l), 0);
    fr_plugin_listing *items = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(fr__loader_list(l, &items, &n), FR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(items[0].path, "plugins");
    CU_ASSERT_STRING_EQUAL(items[0].origin, "FLUXROUTE_PLUGIN_PATH");
    CU_ASSERT_STRING_EQUAL(items[0].refusal, why);
    CU_ASSERT_PTR_NULL(items[0].plugin);
    fr__plugin_listing_free(items, n);
    fr__loader_free(l);

    l = loader_for("plugins");
    get_ok(l, "good_agent");
    fr__loader_free(l);
    CU_ASSERT_FATAL(chdir(old_cwd) == 0);
}

/* Symlinks are followed: a link to a good plugin loads (its digest is the target's),
 * a link to an unsafe file is refused for the target's mode, a dangling link cannot be
 * stat()ed. */
static void test_symlinks(void)
{
    const char *dir = tp("links");
    mkdirs(dir, 0755);
    mkdirs(tp("links/real"), 0755);
    copy_plugin("good_agent", tp("links/real/good_agent.so"), 0755);
    copy_plugin("good_provider", tp("links/real/good_provider.so"), 0666);
    CU_ASSERT_EQUAL_FATAL(symlink("real/good_agent.so", tp("links/good_agent.so")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink("real/good_provider.so", tp("links/good_provider.so")), 0);
    CU_ASSERT_EQUAL_FATAL(symlink("real/missing.so", tp("links/dangling.so")), 0);

    fr_loader *l = loader_for(dir);
    const fr_loaded_plugin *p = NULL;
    char err[1024] = "";
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_OK);
    if (p) {
        CU_ASSERT_STRING_EQUAL(p->path, tp("links/good_agent.so"));
        char want[65];
        sha256sum_of(tp("links/real/good_agent.so"), want);
        CU_ASSERT_STRING_EQUAL(p->sha256, want);
        /* What was loaded is the canonical path that was checked, not the link, which
         * could be pointed elsewhere between the checks and dlopen. */
        struct link_map *lm = NULL;
        char *real = realpath(tp("links/real/good_agent.so"), NULL);
        CU_ASSERT(dlinfo(p->handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && real &&
                  strcmp(lm->l_name, real) == 0);
        free(real);
    }
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_provider", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("links/good_provider.so"),
                   "refused: file is writable by group and others (mode 0666)");
    CU_ASSERT_EQUAL(fr__loader_get(l, "dangling", &p, err, sizeof err), FR_E_NOT_FOUND);
    assert_refusal(err, tp("links/dangling.so"), "cannot stat: No such file or directory");
    fr__loader_free(l);
}

/* ---- names, search order, listing ------------------------------------------------- */

static void test_name_validation(void)
{
    /* A good plugin one level up must stay out of reach of "../good_agent". */
    mkdirs(tp("names/sub"), 0755);
    copy_plugin("good_agent", tp("names/good_agent.so"), 0755);
    fr_loader *l = loader_for(tp("names/sub"));
    static const char *const bad[] = {"../good_agent", "../x", "A",  "a/b",        "",
                                      "x.so",          "1abc", "_x", "good-agent", "/etc/passwd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const fr_loaded_plugin *p = NULL;
        char err[512] = "", want[512];
        CU_ASSERT_EQUAL(fr__loader_get(l, bad[i], &p, err, sizeof err), FR_E_INVALID);
        CU_ASSERT_PTR_NULL(p);
        snprintf(want, sizeof want, "plugin name \"%s\" is invalid (expected [a-z][a-z0-9_]*)",
                 bad[i]);
        CU_ASSERT_STRING_EQUAL(err, want);
    }
    CU_ASSERT_EQUAL(fr__loader_count(l), 0);

    /* Explicit files must be named like plugins too. */
    copy_plugin("good_agent", tp("names/Good-Agent.so"), 0755);
    const fr_loaded_plugin *p = NULL;
    char err[1024] = "";
    CU_ASSERT_EQUAL(fr__loader_load_file(l, tp("names/Good-Agent.so"), &p, err, sizeof err),
                    FR_E_INVALID);
    assert_refusal(err, tp("names/Good-Agent.so"),
                   "file name \"Good-Agent\" is not a valid plugin name "
                   "(expected [a-z][a-z0-9_]*.so)");
    fr__loader_free(l);
}

static void test_not_found(void)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    const fr_loaded_plugin *p = NULL;
    char err[1024] = "";
    CU_ASSERT_EQUAL(fr__loader_get(l, "nope", &p, err, sizeof err), FR_E_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(err, "plugin \"nope\" not found (searched: no plugin directories)");

    char list[2 * PATH_MAX];
    snprintf(list, sizeof list, "%s:%s", tp("nf1"), tp("nf2"));
    mkdirs(tp("nf1"), 0755);
    CU_ASSERT_EQUAL(fr__loader_add_path_list(l, list, "FLUXROUTE_PLUGIN_PATH"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_get(l, "nope", &p, err, sizeof err), FR_E_NOT_FOUND);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "plugin \"nope\" not found (searched: %s)", list);
    CU_ASSERT_STRING_EQUAL(err, want);

    /* A tiny error buffer is truncated, never overrun. */
    char small[12];
    memset(small, 'x', sizeof small);
    CU_ASSERT_EQUAL(fr__loader_get(l, "nope", &p, small, 8), FR_E_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(small, "plugin ");
    CU_ASSERT_EQUAL(small[8], 'x');
    fr__loader_free(l);
}

static void test_path_list(void)
{
    fr_loader *l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(fr__loader_add_dir(l, "/first", "--plugin-dir"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_add_path_list(l, ":/a::/b:", "FLUXROUTE_PLUGIN_PATH"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_add_path_list(l, "", "manifest"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_add_dir(l, "/last", "built-in"), FR_OK);
    CU_ASSERT_STRING_EQUAL(fr__loader_search_path(l), "/first:/a:/b:/last");
    fr__loader_free(l);
}

static void test_search_order_and_list(void)
{
    /* tp() slots rotate: keep the two dirs in buffers of their own. */
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s", tp("order/a"));
    snprintf(b, sizeof b, "%s", tp("order/b"));
    mkdirs(a, 0755);
    mkdirs(b, 0755);
    copy_plugin("good_agent", tp("order/a/good_agent.so"), 0755);
    copy_plugin("bad_abi", tp("order/a/bad_abi.so"), 0755);
    write_file(tp("order/a/Bad-Name.so"), "junk", 4, 0644);
    write_file(tp("order/a/notes.txt"), "not a plugin", 12, 0644);
    copy_plugin("good_agent", tp("order/b/good_agent.so"), 0755);
    copy_plugin("good_provider", tp("order/b/good_provider.so"), 0755);

    fr_loader *l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(fr__loader_add_dir(l, a, "--plugin-dir"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_add_dir(l, tp("order/missing"), "manifest"), FR_OK);
    CU_ASSERT_EQUAL(fr__loader_add_dir(l, b, "built-in"), FR_OK);

    const fr_loaded_plugin *p = get_ok(l, "good_agent");
    CU_ASSERT_STRING_EQUAL(p->path, tp("order/a/good_agent.so"));
    CU_ASSERT_STRING_EQUAL(p->origin, "--plugin-dir");
    const fr_loaded_plugin *prov = get_ok(l, "good_provider");
    char err[1024] = "";
    CU_ASSERT_STRING_EQUAL(prov->origin, "built-in");

    fr_plugin_listing *items = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(fr__loader_list(l, &items, &n), FR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    /* Dir a, sorted by file name ("B" < "b"), then dir b. */
    CU_ASSERT_STRING_EQUAL(items[0].path, tp("order/a/Bad-Name.so"));
    CU_ASSERT_STRING_EQUAL(items[0].refusal, "file name \"Bad-Name\" is not a valid plugin "
                                             "name (expected [a-z][a-z0-9_]*.so)");
    CU_ASSERT_PTR_NULL(items[0].plugin);
    CU_ASSERT_STRING_EQUAL(items[1].name, "bad_abi");
    CU_ASSERT_STRING_EQUAL(items[1].refusal, "ABI 2.0 not supported (host ABI 1.2)");
    CU_ASSERT_PTR_NULL(items[1].plugin);
    CU_ASSERT_STRING_EQUAL(items[1].origin, "--plugin-dir");
    CU_ASSERT_STRING_EQUAL(items[2].name, "good_agent");
    CU_ASSERT_PTR_EQUAL(items[2].plugin, p); /* the cached plugin, not a second load */
    CU_ASSERT_PTR_NULL(items[2].refusal);
    CU_ASSERT_PTR_NULL(items[2].shadowed_by);
    CU_ASSERT_STRING_EQUAL(items[3].path, tp("order/b/good_agent.so"));
    CU_ASSERT_STRING_EQUAL(items[3].origin, "built-in");
    CU_ASSERT_STRING_EQUAL(items[3].shadowed_by, tp("order/a/good_agent.so"));
    CU_ASSERT_PTR_NULL(items[3].plugin);
    CU_ASSERT_PTR_NULL(items[3].refusal);
    CU_ASSERT_STRING_EQUAL(items[4].name, "good_provider");
    CU_ASSERT_PTR_EQUAL(items[4].plugin, prov);
    fr__plugin_listing_free(items, n);
    /* The shadowed copy was never loaded. */
    void *h = dlopen(tp("order/b/good_agent.so"), RTLD_NOW | RTLD_NOLOAD);
    CU_ASSERT_PTR_NULL(h);
    if (h)
        dlclose(h);
    CU_ASSERT_EQUAL(fr__loader_count(l), 2);
    fr__loader_free(l);

    /* First match wins even when it is refused: no silent fallback to dir b. */
    chmod(tp("order/a/good_agent.so"), 0666);
    l = fr__loader_new();
    CU_ASSERT_FATAL(l != NULL);
    fr__loader_add_dir(l, a, "--plugin-dir");
    fr__loader_add_dir(l, b, "built-in");
    CU_ASSERT_EQUAL(fr__loader_get(l, "good_agent", &p, err, sizeof err), FR_E_PERMISSION);
    assert_refusal(err, tp("order/a/good_agent.so"),
                   "refused: file is writable by group and others (mode 0666)");
    fr__loader_free(l);
}

static void test_builtin_dir(void)
{
    /* This test program runs from the build tree's tests/, so it counts as the tree. */
    const char *dir = fr__loader_builtin_dir();
    CU_ASSERT_STRING_EQUAL(dir, FR_BUILD_DIR "/plugins");
    CU_ASSERT_PTR_EQUAL(dir, fr__loader_builtin_dir());
    char cwd[PATH_MAX];
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_STRING_NOT_EQUAL(dir, cwd);
    CU_ASSERT_STRING_NOT_EQUAL(dir, ".");
}

/* ---- driver ----------------------------------------------------------------------- */

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"good agent: loads, digest equals sha256sum", test_good_agent},
    {"digest: kept for the same file, read again after a change in place",
     test_digest_kept_and_renewed},
    {"good provider with a newer minor ABI", test_good_provider_newer_minor},
    {"second get returns the cached plugin", test_cache},
    {"load_file with a bare file name", test_load_file_relative},
    {"descriptor defects are refused and unloaded", test_descriptor_refusals},
    {"unsafe modes and non-plugin files are refused", test_file_refusals},
    {"directory trust: owner, modes, sticky parents, both ends of links", test_dir_trust},
    {"files and directories owned by another user", test_owner_trust},
    {"relative FLUXROUTE_PLUGIN_PATH entries are refused", test_relative_path_list},
    {"symlinks are followed and checked", test_symlinks},
    {"plugin names are validated", test_name_validation},
    {"not found lists the searched dirs", test_not_found},
    {"colon-separated path lists", test_path_list},
    {"search order, shadowing, listing", test_search_order_and_list},
    {"built-in dir is the build tree's", test_builtin_dir},
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int main(void)
{
    const char *build = getenv("FR_BUILDDIR");
    snprintf(g_build, sizeof g_build, "%s", build && *build ? build : FR_BUILD_DIR);
    snprintf(g_tmp, sizeof g_tmp, "%s/tests/tmp/loader-%ld", g_build, (long)getpid());
    mkdirs(g_tmp, 0755);

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("loader", NULL, NULL);
    if (!s)
        return 2;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return 2;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    if (failures == 0)
        nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failures ? 1 : 0;
}
