/* Shared CLI helpers: option parsing, manifest loading with diagnostics, RBAC, input,
 * and Ctrl-C handling. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "base/json_parse.h"
#include "base/sha256.h"
#include "observe/observe.h"

void fr__cli_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fluxroute %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len)
{
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

int fr__cli_parse(const cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                  const char **pos, size_t max_pos, size_t *n_pos)
{
    *n_pos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (*n_pos >= max_pos) {
                fr__cli_error(cmd, "unexpected argument \"%s\" (see fluxroute %s --help)", a,
                              cmd->name);
                return -1;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(cmd->usage, stdout);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = find_opt(opts, a, len);
        if (!o) {
            fr__cli_error(cmd, "unknown option %.*s (see fluxroute %s --help)", (int)len, a,
                          cmd->name);
            return -1;
        }
        const char *value = NULL;
        if (o->has_arg) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                fr__cli_error(cmd, "option %s needs a value", o->name);
                return -1;
            }
        } else if (eq) {
            fr__cli_error(cmd, "option %s takes no value", o->name);
            return -1;
        }
        if (o->flag)
            *o->flag = 1;
        if (o->value)
            *o->value = value;
        if (o->list) {
            if (o->list->n >= sizeof o->list->items / sizeof o->list->items[0]) {
                fr__cli_error(cmd, "too many %s options", o->name);
                return -1;
            }
            o->list->items[o->list->n++] = value;
        }
    }
    return 0;
}

/* Prints notes for agents that default to the echo plugin (the original's manifests). */
static void print_notes(const fr_manifest *m)
{
    for (size_t i = 0; i < m->n_agents; i++) {
        const fr_agent_cfg *a = &m->agents[i];
        if (a->plugin_implicit)
            fprintf(stderr, "%s:%d:%d: note: agent \"%s\" has no `plugin:`; using echo\n", m->path,
                    a->node ? a->node->line : 0, a->node ? a->node->col : 0, a->id);
    }
}

/* Sorts, prints and (optionally) collects diagnostics as JSON, then frees them. */
static void report_diags(fr_diags *diags, struct json_object **errors)
{
    fr__diags_sort(diags);
    fr__diags_print(diags, stderr);
    if (errors) {
        *errors = json_object_new_array();
        for (size_t i = 0; i < diags->n; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "file", json_object_new_string(diags->file));
            json_object_object_add(e, "line", json_object_new_int(diags->items[i].line));
            json_object_object_add(e, "col", json_object_new_int(diags->items[i].col));
            json_object_object_add(e, "message", json_object_new_string(diags->items[i].message));
            json_object_array_add(*errors, e);
        }
    }
    fr__diags_free(diags);
}

int fr__cli_load(const cli_command *cmd, const char *path, const cli_list *plugin_dirs, int notes,
                 fr_pipeline **out, struct json_object **errors)
{
    (void)cmd;
    *out = NULL;
    fr_diags diags;
    fr__diags_init(&diags, path);
    fr_manifest *m = fr__manifest_load(path, &diags);
    if (!m || diags.n > 0) {
        report_diags(&diags, errors);
        fr__manifest_free(m);
        return FR_EXIT_USAGE;
    }
    if (notes)
        print_notes(m);
    fr_build_options bo = {.plugin_dirs = plugin_dirs ? plugin_dirs->items : NULL,
                           .n_plugin_dirs = plugin_dirs ? plugin_dirs->n : 0,
                           .use_env_path = 1};
    fr_pipeline *p = fr__pipeline_build(m, &bo, &diags);
    if (!p) {
        report_diags(&diags, errors);
        return FR_EXIT_USAGE;
    }
    fr__diags_free(&diags);
    *out = p;
    return FR_EXIT_OK;
}

int fr__cli_authorize(const cli_command *cmd, const fr_manifest *m, fr_action action)
{
    fr_role role;
    if (fr__role_from_env(&role) != 0) {
        fr__cli_error(cmd, "REQUEST_ROLE=\"%s\" is not a role (expected viewer, operator or admin)",
                      getenv("REQUEST_ROLE"));
        fr__audit_cli(action, m->path, m, NULL, "denied", "denied", "REQUEST_ROLE is not a role");
        return FR_EXIT_USAGE;
    }
    if (m->rbac[action] & FR_ROLE_BIT(role))
        return FR_EXIT_OK;
    char allowed[64] = "";
    for (int r = FR_ROLE_VIEWER; r <= FR_ROLE_ADMIN; r++)
        if (m->rbac[action] & FR_ROLE_BIT(r)) {
            if (allowed[0])
                strcat(allowed, ", ");
            strcat(allowed, fr__role_name((fr_role)r));
        }
    fr__cli_error(cmd, "permission denied: role %s may not %s %s (router.rbac.%s allows: %s)",
                  fr__role_name(role), action == FR_ACTION_RUN ? "run" : "validate", m->path,
                  fr__action_key(action), allowed[0] ? allowed : "nobody");
    fr__audit_cli(action, m->path, m, NULL, "denied", "denied", "role not allowed by router.rbac");
    return FR_EXIT_PERMISSION;
}

/* --input's text: the argument, or @FILE's content. */
static char *read_input_text(const cli_command *cmd, const char *arg)
{
    if (arg[0] != '@')
        return strdup(arg);
    FILE *f = fopen(arg + 1, "rb");
    if (!f) {
        fr__cli_error(cmd, "--input %s: %s", arg, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                fr__cli_error(cmd, "--input %s: out of memory", arg);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        fr__cli_error(cmd, "--input %s: read error", arg);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

int fr__cli_parse_json(const cli_command *cmd, const char *label, const char *text, size_t len,
                       json_object **out)
{
    size_t at;
    const char *why;
    if (fr__json_parse_whole(text, len, FR_INPUT_MAX_DEPTH, out, &at, &why) == 0)
        return 0;
    int line, col;
    fr__json_line_col(text, at, &line, &col);
    fr__cli_error(cmd, "%s: malformed JSON at line %d, column %d: %s", label, line, col, why);
    return -1;
}

char *fr__cli_read_input(const cli_command *cmd, const char *arg)
{
    char *text = read_input_text(cmd, arg);
    if (!text)
        return NULL;
    char label[1100];
    snprintf(label, sizeof label, "--input%s%s", arg[0] == '@' ? " " : "",
             arg[0] == '@' ? arg : "");
    json_object *o;
    if (fr__cli_parse_json(cmd, label, text, strlen(text), &o) != 0) {
        free(text);
        return NULL;
    }
    json_object_put(o);
    return text;
}

/* ---- signals ------------------------------------------------------------------------ */

static pthread_t signal_thread;
static int signal_thread_running;
static volatile int interrupted;

static void *signal_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-signals");
    fr_pipeline *p = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0 || sig == SIGUSR1)
            break;
        if (interrupted) {
            static const char msg[] = "\nfluxroute: interrupted again; exiting now\n";
            if (write(2, msg, sizeof msg - 1) < 0) {
                /* nothing more to do */
            }
            _exit(FR_EXIT_INTERRUPTED);
        }
        interrupted = 1;
        if (p)
            fr__pipeline_cancel(p);
    }
    return NULL;
}

void fr__cli_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void fr__cli_signals_start(fr_pipeline *p)
{
    if (pthread_create(&signal_thread, NULL, signal_main, p) == 0)
        signal_thread_running = 1;
}

int fr__cli_signals_stop(void)
{
    if (signal_thread_running) {
        pthread_kill(signal_thread, SIGUSR1);
        pthread_join(signal_thread, NULL);
        signal_thread_running = 0;
    }
    return interrupted;
}

void fr__cli_print_json(json_object *o)
{
    const char *text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text)
        puts(text);
    json_object_put(o);
}

/* ---- the audit line of a command ------------------------------------------------------ */

static const char *cli_lease_key;
static uint64_t cli_fencing_token;

void fr__audit_cli_lease(const char *key, uint64_t fencing_token)
{
    cli_lease_key = key;
    cli_fencing_token = fencing_token;
}

void fr__audit_cli(fr_action action, const char *manifest_path, const fr_manifest *m,
                   const char *run_id, const char *decision, const char *result, const char *error)
{
    static int written;
    if (!fr__audit_enabled() || __atomic_exchange_n(&written, 1, __ATOMIC_ACQ_REL))
        return;
    fr_role role;
    const char *role_name =
        fr__role_from_env(&role) == 0 ? fr__role_name(role) : getenv("REQUEST_ROLE");
    const char *user = getenv("USER");
    char sha[65];
    if (m && m->text)
        fr__sha256_hex(m->text, m->text_len, sha);
    fr_audit_event ev = {
        .actor = user && *user ? user : "cli",
        .role = role_name,
        .namespace_ = m ? m->namespace_ : NULL,
        .action = fr__action_name(action),
        .manifest = m && m->path ? m->path : manifest_path,
        .manifest_sha256 = m && m->text ? sha : NULL,
        .run_id = run_id && *run_id ? run_id : NULL,
        .decision = decision,
        .result = result,
        .error = error,
        .lease_key = cli_lease_key,
        .fencing_token = cli_fencing_token,
    };
    fr__audit_log(&ev);
}
