/* `fluxroute scaffold DIR --name NAME`: a standalone plugin project from the templates in
 * sdk/templates (installed to $(pkgdatadir)/templates), built against the plugin kit
 * (include/fluxroute/kit.h, libfluxroute-kit.a).  The templates are read from the
 * source tree when this executable is the build tree's, from the installed directory
 * otherwise, the same rule the loader applies to built-in plugins. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "base/fileio.h"
#include "cli/cli.h"
#include "plugin/loader.h"

/* One file of a project: template name per kind, and the name it gets in DIR. */
typedef struct scaffold_file {
    const char *agent_template;
    const char *provider_template;
    const char *target; /* "@NAME@" is replaced by the plugin name */
} scaffold_file;

static const scaffold_file files[] = {
    {"agent.c", "provider.c", "@NAME@.c"},
    {"Makefile.tmpl", "Makefile.tmpl", "Makefile"},
    {"agent.yaml", "provider.yaml", "manifest.yaml"},
    {"README.md", "README.md", "README.md"},
};

/* A placeholder and its value. */
typedef struct subst {
    const char *key;
    const char *value;
} subst;

static const char *template_dir(void)
{
    if (strcmp(fr__loader_builtin_dir(), FR_BUILD_DIR "/plugins") == 0)
        return FR_SRC_DIR "/sdk/templates";
    return FR_TEMPLATE_DIR;
}

static int valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z') || strlen(s) > 64)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* 1 when `dir` exists and has an entry other than . and .. (or cannot be read). */
static int dir_non_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno != ENOENT;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

/* mkdir -p.  Returns 0 or -1 with errno set. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Reads a whole file.  Caller frees.  NULL with errno set on failure. */
static char *read_file(const char *path)
{
    return fr__file_read(path, NULL);
}

/* Writes `text` with every placeholder replaced.  Returns 0, or -1 with errno set. */
static int write_substituted(FILE *out, const char *text, const subst *subs, size_t n_subs)
{
    for (const char *p = text; *p;) {
        size_t i = 0;
        while (i < n_subs && strncmp(p, subs[i].key, strlen(subs[i].key)) != 0)
            i++;
        if (i < n_subs) {
            fputs(subs[i].value, out);
            p += strlen(subs[i].key);
        } else {
            fputc(*p++, out);
        }
    }
    return ferror(out) ? -1 : 0;
}

/* The replaced text of a short string (a target file name).  Caller frees. */
static char *substitute(const char *text, const subst *subs, size_t n_subs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return NULL;
    write_substituted(mem, text, subs, n_subs);
    fclose(mem);
    return buf;
}

static int write_project(const cli_command *cmd, const char *dir, int provider, const subst *subs,
                         size_t n_subs)
{
    const char *tdir = template_dir();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", tdir,
                 provider ? files[i].provider_template : files[i].agent_template);
        char *text = read_file(src);
        if (!text) {
            fr__cli_error(cmd, "cannot read template %s: %s", src, strerror(errno));
            return FR_EXIT_FAILED;
        }
        char *target = substitute(files[i].target, subs, n_subs);
        if (!target || snprintf(dst, sizeof dst, "%s/%s", dir, target) >= (int)sizeof dst) {
            free(target);
            free(text);
            fr__cli_error(cmd, "%s: path too long", dir);
            return FR_EXIT_FAILED;
        }
        free(target);
        FILE *out = fopen(dst, "w");
        int rc = out ? write_substituted(out, text, subs, n_subs) : -1;
        if (out && fclose(out) != 0)
            rc = -1;
        free(text);
        if (rc != 0) {
            fr__cli_error(cmd, "cannot write %s: %s", dst, strerror(errno));
            return FR_EXIT_FAILED;
        }
        printf("  created %s\n", dst);
    }
    return FR_EXIT_OK;
}

/* The link flags of the plugin kit under `dir` (--sdk): an installation prefix
 * (lib/, lib64/), a source tree built in place (sdk/), or this executable's source tree
 * built elsewhere.  json-c comes from pkg-config.  Returns 0, or -1 when none is there. */
static int find_kit(const char *dir, char *libs, size_t size)
{
    char path[PATH_MAX];
    const char *const under[] = {"lib", "lib64", "sdk"};
    for (size_t i = 0; i < sizeof under / sizeof under[0] + 1; i++) {
        if (i < sizeof under / sizeof under[0])
            snprintf(path, sizeof path, "%s/%s/libfluxroute-kit.a", dir, under[i]);
        else if (strcmp(dir, FR_SRC_DIR) == 0)
            snprintf(path, sizeof path, "%s/sdk/libfluxroute-kit.a", FR_BUILD_DIR);
        else
            break;
        if (access(path, R_OK) == 0) {
            int n = snprintf(libs, size, "%s $(shell pkg-config --libs json-c)", path);
            return n > 0 && (size_t)n < size ? 0 : -1;
        }
    }
    return -1;
}

int fr__cmd_scaffold(const cli_command *cmd, int argc, char **argv)
{
    const char *pos[1], *name = NULL, *kind = "agent", *sdk = NULL;
    size_t n_pos;
    int force = 0;
    const cli_opt opts[] = {{"--name", 1, &name, NULL, NULL},
                            {"--kind", 1, &kind, NULL, NULL},
                            {"--sdk", 1, &sdk, NULL, NULL},
                            {"--force", 0, NULL, NULL, &force},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1 || !name) {
        fr__cli_error(cmd, "expected a directory and --name NAME (see fluxroute scaffold --help)");
        return FR_EXIT_USAGE;
    }
    if (!valid_name(name)) {
        fr__cli_error(cmd,
                      "invalid plugin name \"%s\": use [a-z][a-z0-9_]* (at most 64 bytes); "
                      "it names NAME.so and the C identifiers",
                      name);
        return FR_EXIT_USAGE;
    }
    int provider = strcmp(kind, "provider") == 0;
    if (!provider && strcmp(kind, "agent") != 0) {
        fr__cli_error(cmd, "invalid --kind \"%s\": expected agent or provider", kind);
        return FR_EXIT_USAGE;
    }
    const char *dir = pos[0];
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fr__cli_error(cmd, "%s exists and is not a directory", dir);
        return FR_EXIT_USAGE;
    }
    if (!force && dir_non_empty(dir)) {
        fr__cli_error(cmd, "%s is not empty: refusing to overwrite (use --force)", dir);
        return FR_EXIT_USAGE;
    }

    /* Where the headers, the plugin kit and the fluxroute binary come from, for the
     * Makefile. */
    char cflags[PATH_MAX + 16], kit_libs[PATH_MAX + 64], exe[PATH_MAX] = "fluxroute";
    const char *plugindir = "";
    char pc_path[PATH_MAX + 96] = "# PKG_CONFIG: not used (scaffold --sdk)";
    if (sdk) {
        char *abs = realpath(sdk, NULL);
        char header[PATH_MAX];
        snprintf(header, sizeof header, "%s/include/fluxroute/plugin.h", abs ? abs : sdk);
        if (!abs || access(header, R_OK) != 0) {
            fr__cli_error(cmd, "--sdk %s: no FluxRoute source tree there (%s not found)", sdk,
                          header);
            free(abs);
            return FR_EXIT_USAGE;
        }
        if (find_kit(abs, kit_libs, sizeof kit_libs) != 0) {
            fr__cli_error(cmd,
                          "--sdk %s: no plugin kit (libfluxroute-kit.a) under lib/ or sdk/: "
                          "build the source tree first, or give an installation prefix",
                          sdk);
            free(abs);
            return FR_EXIT_USAGE;
        }
        snprintf(cflags, sizeof cflags, "-I%s/include", abs);
        free(abs);
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (n <= 0)
            snprintf(exe, sizeof exe, "fluxroute");
        plugindir = "";
    } else {
        snprintf(cflags, sizeof cflags, "$(shell $(PKG_CONFIG) --cflags fluxroute-kit)");
        snprintf(kit_libs, sizeof kit_libs, "$(shell $(PKG_CONFIG) --libs fluxroute-kit)");
        plugindir = "$(shell $(PKG_CONFIG) --variable=plugindir fluxroute)";
        /* This FluxRoute's own pkg-config directory goes first, so that an install under
         * any --prefix builds without PKG_CONFIG_PATH set by hand; and the installed
         * binary is named by its path, so that `make check` needs no PATH either. */
        snprintf(pc_path, sizeof pc_path,
                 "PKG_CONFIG = PKG_CONFIG_PATH=%s$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH} "
                 "pkg-config",
                 FR_PKGCONFIG_DIR);
        char self[PATH_MAX], *installed = realpath(FR_BINDIR "/fluxroute", NULL);
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        if (installed && n > 0 && strcmp(installed, self) == 0)
            snprintf(exe, sizeof exe, "%s", self);
        free(installed);
    }
    const subst subs[] = {
        {"@NAME@", name},
        {"@KIND@", provider ? "provider" : "agent"},
        {"@CALLBACK@", provider ? "complete" : "invoke"},
        {"@FLUXROUTE_CFLAGS@", cflags},
        {"@FLUXROUTE_KIT_LIBS@", kit_libs},
        {"@FLUXROUTE@", exe},
        {"@PLUGINDIR@", plugindir},
        {"@PKG_CONFIG_PATH@", pc_path},
    };
    if (make_dirs(dir) != 0) {
        fr__cli_error(cmd, "cannot create %s: %s", dir, strerror(errno));
        return FR_EXIT_FAILED;
    }
    printf("fluxroute scaffold: %s plugin \"%s\" in %s\n", provider ? "provider" : "agent", name,
           dir);
    rc = write_project(cmd, dir, provider, subs, sizeof subs / sizeof subs[0]);
    if (rc != FR_EXIT_OK)
        return rc;
    printf("next:\n  make -C %s\n  %s run %s/manifest.yaml --plugin-dir %s\n"
           "  %s plugins test %s/%s.so\n",
           dir, exe, dir, dir, exe, dir, name);
    return FR_EXIT_OK;
}
