/* `fluxroute plugins test PATH.so`: the plugin conformance kit.
 *
 * The kit loads the plugin through the loader (so every refusal the host would make is
 * made here too), then runs a table of checks.  Checks that execute plugin code run in a
 * forked child with a time limit, so a crash or a hang is a failed check, not the end of
 * the kit.  The children drive the plugin directly, with a call context of their own and
 * a copy of the host API table that counts heap allocations (host->alloc(NULL, ...)
 * against host->free_mem) and replaces the wall clock with a virtual one, so that two
 * runs of a deterministic plugin give the same bytes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "plugin/elf_symbols.h"
#include "plugin/plugin_libraries.h"
#include "base/fileio.h"
#include "host/host.h"
#include "base/json_check.h"
#include "manifest/options.h"
#include "cli/plugin_conformance.h"
#include "trace/replay_cursor.h"
#include "base/yaml_tree.h"

#define KIT_MSG               600
#define KIT_MAX_CHECKS        16
#define KIT_CALL_TIMEOUT_MS   10000 /* an ordinary sample call */
#define KIT_CANCEL_TIMEOUT_MS 2000  /* a call that is already cancelled or late */
#define KIT_INIT_ROUNDS       3     /* init/fini symmetry: instances created at once */
#define KIT_MAX_ALLOC_FAIL    200   /* allocation-failure rounds at most */
#define KIT_SEED              0x5eedULL
#define KIT_EPOCH_US          1700000000000000LL /* the virtual clock's start */

/* Child exit codes (anything else, or a signal, is reported as a crash). */
enum { CHILD_PASS = 0, CHILD_FAIL = 3, CHILD_SKIP = 4, CHILD_NOT_FIRED = 5, CHILD_NEEDS_INPUT = 6 };

/* KIT_WARN and KIT_NEEDS_INPUT are not failures: a library's own calls, and a plugin
 * that rightly refuses the built-in sample input (give one with --sample). */
typedef enum { KIT_PASS, KIT_FAIL, KIT_SKIP, KIT_WARN, KIT_NEEDS_INPUT } kit_result;

typedef struct kit_check {
    const char *name;
    kit_result result;
    char message[KIT_MSG];
} kit_check;

typedef struct kit {
    const char *path;
    const fr_loaded_plugin *lp;
    const fr_plugin *d;
    fr_config cfg;
    int cfg_ok;         /* options filled: runtime checks can go on */
    fr_instance inst;   /* the instance under test */
    const char *sample; /* --sample: the input of the sample calls, or NULL */
    kit_check checks[KIT_MAX_CHECKS];
    size_t n_checks;
} kit;

static const char sample_empty[] = "{\"input\":{},\"steps\":{}}";
static const char sample_nested[] =
    "{\"input\":{\"text\":\"The quick brown fox jumps over the lazy dog\",\"n\":3,"
    "\"tags\":[\"a\",\"b\"],\"flag\":true,\"none\":null},"
    "\"steps\":{\"prev\":{\"text\":\"earlier output\",\"usage\":{\"input_tokens\":2,"
    "\"output_tokens\":2}},\"deep\":{\"a\":{\"b\":{\"c\":[1,2.5,{\"d\":\"\\u00e9\\n\"}]}}}}}";
static const char sample_chat[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

/* ---- the kit's host table -------------------------------------------------------------
 * A copy of the engine's table with three functions wrapped.  The counters are plain
 * globals: only the (single-threaded) children touch them, each with its own copy. */

static fr_host_api kit_host;
static long heap_allocs, heap_frees, alloc_calls;
static int64_t virtual_clock;

static void *kit_alloc(fr_call *call, size_t size)
{
    alloc_calls++;
    void *p = fr__host_api()->alloc(call, size);
    if (p && !call)
        heap_allocs++;
    return p;
}

static void kit_free_mem(void *ptr)
{
    if (ptr)
        heap_frees++;
    fr__host_api()->free_mem(ptr);
}

/* A clock that advances 1 ms per reading from a fixed epoch: what replay would feed a
 * plugin, so clock readings do not make two runs differ. */
static int64_t kit_clock_us(fr_call *call)
{
    (void)call;
    return virtual_clock += 1000;
}

static void kit_host_init(void)
{
    kit_host = *fr__host_api();
    kit_host.alloc = kit_alloc;
    kit_host.free_mem = kit_free_mem;
    kit_host.clock_us = kit_clock_us;
}

/* ---- a stand-in provider for agents that call host->provider_call ------------------- */

static fr_status stub_complete(void *state, fr_call *call, const char *request, size_t request_len,
                               char **response, size_t *response_len)
{
    (void)state;
    (void)request;
    (void)request_len;
    static const char reply[] = "{\"text\":\"conformance reply\",\"tool_calls\":[],"
                                "\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":1,"
                                "\"output_tokens\":2},\"model\":\"conformance\"}";
    char *p = fr__arena_alloc(call->arena, sizeof reply);
    if (!p)
        return FR_E_NOMEM;
    memcpy(p, reply, sizeof reply);
    *response = p;
    *response_len = sizeof reply - 1;
    return FR_OK;
}

static const fr_plugin stub_provider_desc = {
    .abi_version = FR_ABI_VERSION,
    .struct_size = sizeof(fr_plugin),
    .kind = FR_PLUGIN_PROVIDER,
    .name = "conformance_provider",
    .version = "1.0.0",
    .description = "fixed answers for agents under test",
    .complete = stub_complete,
};
static const fr_loaded_plugin stub_provider_plugin = {
    .name = "conformance_provider", .path = "(built in)", .desc = &stub_provider_desc};
static fr_instance stub_provider = {.id = "conformance_provider", .plugin = &stub_provider_plugin};

/* ---- results ---------------------------------------------------------------------------- */

static kit_check *add_check(kit *k, const char *name, kit_result r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static kit_check *add_check(kit *k, const char *name, kit_result r, const char *fmt, ...)
{
    kit_check *c = &k->checks[k->n_checks < KIT_MAX_CHECKS ? k->n_checks++ : KIT_MAX_CHECKS - 1];
    c->name = name;
    c->result = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    return c;
}

/* Appends printf text to a message buffer. */
static void msg_append(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msg_append(char *msg, size_t len, const char *fmt, ...)
{
    size_t used = strlen(msg);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, len - used, fmt, ap);
    va_end(ap);
}

/* ---- static checks ---------------------------------------------------------------------- */

static void check_descriptor(kit *k)
{
    const fr_plugin *d = k->d;
    char msg[KIT_MSG] = "";
    if (!d->description || !d->description[0])
        msg_append(msg, sizeof msg, "no description (`plugins list` shows it); ");
    if (!d->version[0])
        msg_append(msg, sizeof msg, "empty version; ");
    if (!d->init)
        msg_append(msg, sizeof msg, "no init callback (the host calls it for every instance); ");
    if (!d->fini)
        msg_append(msg, sizeof msg, "no fini callback (instances could not be released); ");
    if (d->options && d->options[0].name && d->config_size == 0)
        msg_append(msg, sizeof msg, "options declared but config_size is 0; ");
    if (msg[0]) {
        msg[strlen(msg) - 2] = '\0';
        add_check(k, "descriptor", KIT_FAIL, "%s", msg);
    } else {
        add_check(k, "descriptor", KIT_PASS, "%s %s, %s, ABI %u.%u, struct %u bytes", d->name,
                  d->version, d->kind == FR_PLUGIN_AGENT ? "agent" : "provider",
                  FR_ABI_VERSION_MAJOR(d->abi_version), FR_ABI_VERSION_MINOR(d->abi_version),
                  (unsigned)d->struct_size);
    }
}

/* A value of the option's type, for required options the user gave no --config for. */
static const char *sample_value(fr_option_type t)
{
    switch (t) {
    case FR_OPT_INT: return "1";
    case FR_OPT_BOOL: return "false";
    case FR_OPT_DOUBLE: return "0.5";
    case FR_OPT_DURATION: return "10ms";
    case FR_OPT_JSON: return "{}";
    default: return "\"conformance test\"";
    }
}

/* Fills the config struct from `config_yaml` (NULL: defaults, plus sample values for
 * required options), and checks every option has a doc line. */
static void check_options(kit *k, const char *config_yaml)
{
    const fr_plugin *d = k->d;
    char msg[KIT_MSG] = "";
    size_t n = 0, samples = 0;
    char yaml[4096] = "";
    for (const fr_option *o = d->options; o && o->name; o = FR_OPTION_NEXT(d, o), n++) {
        if (!o->doc || !o->doc[0])
            msg_append(msg, sizeof msg, "option \"%s\" has no doc; ", o->name);
        if (o->required && !config_yaml) {
            msg_append(yaml, sizeof yaml, "%s: %s\n", o->name, sample_value(o->type));
            samples++;
        }
    }
    const char *text = config_yaml ? config_yaml : yaml;
    fr_diags diags;
    fr__diags_init(&diags, "--config");
    fr_ydoc doc = {0};
    int parsed = fr__ydoc_parse(&doc, text, strlen(text), &diags) == 0;
    if (parsed)
        fr__options_fill(d, doc.root, NULL, "plugin under test", &k->cfg, &diags);
    fr__ydoc_free(&doc);
    for (size_t i = 0; i < diags.n; i++)
        msg_append(msg, sizeof msg, "%s; ", diags.items[i].message);
    k->cfg_ok = parsed && diags.n == 0;
    fr__diags_free(&diags);
    if (msg[0]) {
        msg[strlen(msg) - 2] = '\0';
        add_check(k, "options", KIT_FAIL, "%s", msg);
        return;
    }
    add_check(k, "options", KIT_PASS, "%zu option%s, documented, defaults parse%s", n,
              n == 1 ? "" : "s",
              samples ? " (sample values for the required ones; --config sets your own)" : "");
}

/* Functions a plugin must not call directly, grouped by what to use instead: the host
 * cannot record them, so a run would not replay (or the plugin would escape
 * cancellation and accounting).  docs/plugin-guide.md lists the same groups. */
#define KIT_MAX_GROUP 16
static const struct forbidden_group {
    const char *instead;
    const char *names[KIT_MAX_GROUP]; /* NULL-terminated by the zero fill */
} forbidden[] = {
    {"host->clock_us", {"time", "clock_gettime", "gettimeofday", "clock", "ftime", "timespec_get"}},
    {"host->sleep_us", {"sleep", "usleep", "nanosleep", "clock_nanosleep"}},
    {"host->random_u64",
     {"rand", "random", "srand", "srandom", "rand_r", "drand48", "erand48", "lrand48", "nrand48",
      "mrand48", "jrand48", "srand48", "getrandom", "getentropy", "arc4random"}},
    {"host->random_u64", {"arc4random_buf", "arc4random_uniform"}},
    {"host->http",
     {"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "getaddrinfo",
      "gethostbyname", "gethostbyname_r", "gethostbyname2"}},
    {"host->http",
     {"send", "recv", "sendto", "recvfrom", "sendmsg", "recvmsg", "__recv_chk", "__recvfrom_chk"}},
    {"host->sleep_us or host->http",
     {"select", "pselect", "poll", "ppoll", "__poll_chk", "epoll_wait", "epoll_pwait"}},
    {"no process creation",
     {"fork", "vfork", "clone", "system", "popen", "execl", "execle", "execlp", "execv", "execve",
      "execvp", "execvpe", "fexecve", "posix_spawn", "posix_spawnp"}},
    {"no threads of your own", {"pthread_create", "thrd_create"}},
    {"the host API", {"syscall"}},
};
#define N_FORBIDDEN_GROUPS (sizeof forbidden / sizeof forbidden[0])

/* What to use instead of `name`, or NULL when the plugin may call it.  With name == NULL,
 * counts the listed functions into *n. */
static const char *forbidden_instead(const char *name, size_t *n)
{
    for (size_t g = 0; g < N_FORBIDDEN_GROUPS; g++)
        for (size_t i = 0; i < KIT_MAX_GROUP && forbidden[g].names[i]; i++) {
            if (n)
                (*n)++;
            else if (strcmp(forbidden[g].names[i], name) == 0)
                return forbidden[g].instead;
        }
    return NULL;
}

typedef struct symbol_scan {
    char found[KIT_MSG];
    size_t n, undefined;
} symbol_scan;

static void note_symbol(const char *name, void *ud)
{
    symbol_scan *s = ud;
    s->undefined++;
    const char *instead = forbidden_instead(name, NULL);
    if (!instead)
        return;
    msg_append(s->found, sizeof s->found, "%s%s() (use %s)", s->n ? ", " : "", name, instead);
    s->n++;
}

static void check_symbols(kit *k)
{
    symbol_scan scan = {.n = 0};
    char err[256];
    if (fr__elf_each_undefined_symbol(k->lp->path, note_symbol, &scan, err, sizeof err) != 0)
        add_check(k, "direct calls", KIT_FAIL, "cannot read the symbol table: %s", err);
    else if (scan.n)
        add_check(k, "direct calls", KIT_FAIL, "calls what the host cannot record: %s", scan.found);
    else {
        size_t listed = 0;
        forbidden_instead(NULL, &listed);
        add_check(k, "direct calls", KIT_PASS,
                  "none of %zu forbidden functions among %zu undefined symbols", listed,
                  scan.undefined);
    }
}

typedef struct library_scan {
    char found[KIT_MSG];
    char last[128]; /* the library of the last import noted: imports are grouped by it */
    size_t n;
} library_scan;

static void note_library_import(const char *lib, const char *sym, void *ud)
{
    library_scan *s = ud;
    if (!forbidden_instead(sym, NULL))
        return;
    if (strcmp(s->last, lib) == 0)
        msg_append(s->found, sizeof s->found, ", %s()", sym);
    else
        msg_append(s->found, sizeof s->found, "%s%s: %s()", s->n ? "; " : "", lib, sym);
    snprintf(s->last, sizeof s->last, "%s", lib);
    s->n++;
}

/* The plugin's libraries (DT_NEEDED, transitively; the C runtime and the host's own left
 * out): their forbidden imports are warnings, for a library may read the clock or make
 * random numbers for reasons of its own, which the plugin's calls may never reach. */
static void check_libraries(kit *k)
{
    library_scan scan = {.n = 0};
    char libs[KIT_MSG / 2], err[256];
    int n = fr__plugin_libraries_each_import(k->lp->path, note_library_import, &scan, libs,
                                             sizeof libs, err, sizeof err);
    if (n < 0)
        add_check(k, "library calls", KIT_WARN, "cannot read the libraries: %s", err);
    else if (scan.n)
        add_check(k, "library calls", KIT_WARN,
                  "libraries the plugin links call what the host cannot record (make sure the "
                  "plugin's calls do not reach them): %s",
                  scan.found);
    else if (!libs[0])
        add_check(k, "library calls", KIT_PASS, "links no libraries beyond the C runtime");
    else
        add_check(k, "library calls", KIT_PASS, "no forbidden functions in %d librar%s: %s", n,
                  n == 1 ? "y" : "ies", libs);
}

/* ---- running plugin code in a child -------------------------------------------------- */

/* A check body, run in the child: returns a CHILD_* code with a message in msg. */
typedef int (*child_fn)(kit *k, const void *arg, char *msg, size_t len);

/* Runs fn in a forked child with a time limit.  Returns the child's CHILD_* code, or -1
 * when it crashed, hung or exited otherwise (msg says which).  `quiet` sends the child's
 * stderr to /dev/null (rounds that are expected to hit error paths). */
static int run_isolated(kit *k, child_fn fn, const void *arg, int timeout_ms, int quiet, char *msg,
                        size_t len)
{
    int fds[2];
    msg[0] = '\0';
    if (pipe(fds) != 0) {
        snprintf(msg, len, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, len, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, 2);
        }
        char m[KIT_MSG] = "";
        int rc = fn(k, arg, m, sizeof m);
        ssize_t w = write(fds[1], m, strlen(m));
        (void)w;
        _exit(rc);
    }
    close(fds[1]);
    size_t got = 0;
    int64_t until = fr__mono_us() + (int64_t)timeout_ms * 1000;
    int timed_out = 0;
    for (;;) {
        int64_t left = (until - fr__mono_us()) / 1000;
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        ssize_t n = read(fds[0], msg + got, len - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == len - 1)
            got = 0; /* keep reading (and overwrite): the child must not block on the pipe */
    }
    msg[got] = '\0';
    close(fds[0]);
    if (timed_out) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(msg, len, "did not return within %d ms (killed)", timeout_ms);
        return -1;
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(ws)) {
        char why[KIT_MSG];
        snprintf(why, sizeof why, "crashed: killed by signal %d (%s)%s%s", WTERMSIG(ws),
                 strsignal(WTERMSIG(ws)), msg[0] ? "; " : "", msg);
        snprintf(msg, len, "%s", why);
        return -1;
    }
    int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    if (rc != CHILD_PASS && rc != CHILD_FAIL && rc != CHILD_SKIP && rc != CHILD_NOT_FIRED &&
        rc != CHILD_NEEDS_INPUT) {
        snprintf(msg, len,
                 "the child exited with status %d (a sanitizer report or exit() in "
                 "the plugin?)",
                 rc);
        return -1;
    }
    return rc;
}

/* Records a check from a child's result. */
static void add_child_check(kit *k, const char *name, int rc, const char *msg)
{
    add_check(k, name,
              rc == CHILD_PASS          ? KIT_PASS
              : rc == CHILD_SKIP        ? KIT_SKIP
              : rc == CHILD_NEEDS_INPUT ? KIT_NEEDS_INPUT
                                        : KIT_FAIL,
              "%s", msg);
}

/* One call context with its own arena and cancellation. */
typedef struct kit_call {
    fr_call call;
    fr_arena arena;
    fr_cancel *cancel;
} kit_call;

static int kit_call_begin(kit *k, kit_call *kc, int64_t attempt_deadline_mono)
{
    memset(kc, 0, sizeof *kc);
    kc->cancel = fr__cancel_new();
    if (!kc->cancel)
        return -1;
    fr__call_init(&kc->call, kc->cancel, &k->inst, "conformance", 1, attempt_deadline_mono,
                  KIT_SEED, &kc->arena);
    return 0;
}

static void kit_call_end(kit_call *kc)
{
    fr__call_done(&kc->call);
    fr__arena_free(&kc->arena);
    fr__cancel_unref(kc->cancel);
}

/* Creates the instance under test.  FR_OK, or the init() status with its message. */
static fr_status kit_init(kit *k, char *msg, size_t len)
{
    free(fr__host_take_init_error());
    k->inst.state = NULL;
    fr_status st = k->d->init ? k->d->init(&kit_host, k->cfg.data, &k->inst.state) : FR_OK;
    char *why = fr__host_take_init_error();
    if (st != FR_OK)
        snprintf(msg, len, "init() returned %s: %s", fr_status_name(st),
                 why ? why : fr_strerror(st));
    free(why);
    return st;
}

static void kit_fini(kit *k)
{
    if (k->d->fini)
        k->d->fini(k->inst.state);
}

/* Creates the instance under test and a call on it.  Returns 0, or -1 with a reason in
 * msg (nothing left to release). */
static int kit_begin(kit *k, kit_call *kc, int64_t attempt_deadline_mono, char *msg, size_t len)
{
    if (kit_init(k, msg, len) != FR_OK)
        return -1;
    if (kit_call_begin(k, kc, attempt_deadline_mono) != 0) {
        snprintf(msg, len, "out of memory");
        kit_fini(k);
        return -1;
    }
    return 0;
}

/* Ends the call and finalises the instance. */
static void kit_end(kit *k, kit_call *kc)
{
    kit_call_end(kc);
    kit_fini(k);
}

/* Calls the plugin's invoke (agents) or complete (providers). */
static fr_status kit_invoke(kit *k, fr_call *c, const char *in, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (k->d->kind == FR_PLUGIN_PROVIDER)
        return k->d->complete(k->inst.state, c, in, strlen(in), out, out_len);
    return k->d->invoke(k->inst.state, c, in, strlen(in), out, out_len);
}

/* The input of the checks after the sample calls: --sample's, or the richest built-in one
 * for the plugin's kind. */
static const char *kit_sample(const kit *k)
{
    if (k->sample)
        return k->sample;
    return k->d->kind == FR_PLUGIN_PROVIDER ? sample_chat : sample_nested;
}

/* Checks a successful call's output: valid JSON, and for providers a response with text
 * and usage.  Returns 0, or -1 with a reason in msg. */
static int check_output(kit *k, const char *out, size_t out_len, char *msg, size_t len)
{
    if (!out) {
        snprintf(msg, len, "returned FR_OK without an output");
        return -1;
    }
    if (!fr__json_valid(out, out_len)) {
        snprintf(msg, len, "output is not one valid JSON value: %.80s%s", out,
                 out_len > 80 ? "..." : "");
        return -1;
    }
    if (k->d->kind != FR_PLUGIN_PROVIDER)
        return 0;
    json_object *r = json_tokener_parse(out), *text, *usage, *in_t, *out_t;
    int ok = r && json_object_is_type(r, json_type_object) &&
             json_object_object_get_ex(r, "text", &text) &&
             json_object_is_type(text, json_type_string) &&
             json_object_object_get_ex(r, "usage", &usage) &&
             (!usage || /* null: the vendor reported none */
              (json_object_object_get_ex(usage, "input_tokens", &in_t) &&
               json_object_is_type(in_t, json_type_int) &&
               json_object_object_get_ex(usage, "output_tokens", &out_t) &&
               json_object_is_type(out_t, json_type_int)));
    json_object_put(r);
    if (!ok) {
        snprintf(msg, len,
                 "response lacks a string \"text\" or integer "
                 "usage.input_tokens/usage.output_tokens (or usage null): %.80s",
                 out);
        return -1;
    }
    return 0;
}

/* 1 when host->alloc(NULL, ...) and free_mem balanced, else 0 with a reason in msg. */
static int heap_balanced(char *msg, size_t len, const char *when)
{
    if (heap_allocs == heap_frees)
        return 1;
    snprintf(msg, len,
             "%ld of %ld blocks from host->alloc(NULL, ...) not released by free_mem "
             "%s",
             heap_allocs - heap_frees, heap_allocs, when);
    return 0;
}

static int child_init_fini(kit *k, const void *arg, char *msg, size_t len)
{
    (void)arg;
    void *states[KIT_INIT_ROUNDS];
    for (int i = 0; i < KIT_INIT_ROUNDS; i++) {
        if (kit_init(k, msg, len) != FR_OK) {
            for (int j = 0; j < i; j++) {
                k->inst.state = states[j];
                kit_fini(k);
            }
            return CHILD_FAIL;
        }
        states[i] = k->inst.state;
    }
    for (int i = KIT_INIT_ROUNDS - 1; i >= 0; i--) {
        k->inst.state = states[i];
        kit_fini(k);
    }
    if (!heap_balanced(msg, len, "after every fini()"))
        return CHILD_FAIL;
    snprintf(msg, len, "%d instances at once, each released (%ld heap blocks, all freed)",
             KIT_INIT_ROUNDS, heap_allocs);
    return CHILD_PASS;
}

/* One sample call on a fresh instance: arg is the input text. */
static int child_sample(kit *k, const void *arg, char *msg, size_t len)
{
    const char *input = arg;
    kit_call kc;
    if (kit_begin(k, &kc, 0, msg, len) != 0)
        return CHILD_FAIL;
    char *out;
    size_t out_len;
    fr_status st = kit_invoke(k, &kc.call, input, &out, &out_len);
    int rc = CHILD_PASS;
    if ((st == FR_E_INVALID || st == FR_E_BAD_REQUEST) && input != k->sample) {
        /* Refusing an input that lacks what the plugin needs is right, not a failure. */
        snprintf(msg, len,
                 "returned %s (%s) for the built-in input %.60s%s: give one with --sample FILE",
                 fr_status_name(st), kc.call.error ? kc.call.error : fr_strerror(st), input,
                 strlen(input) > 60 ? "..." : "");
        rc = CHILD_NEEDS_INPUT;
    } else if (st != FR_OK) {
        snprintf(msg, len, "returned %s: %s", fr_status_name(st),
                 kc.call.error ? kc.call.error : fr_strerror(st));
        rc = CHILD_FAIL;
    } else if (check_output(k, out, out_len, msg, len) != 0) {
        rc = CHILD_FAIL;
    } else {
        snprintf(msg, len, "FR_OK, %zu bytes of valid JSON%s", out_len,
                 k->d->kind == FR_PLUGIN_PROVIDER ? " with text and usage" : "");
    }
    kit_end(k, &kc);
    if (rc == CHILD_PASS && !heap_balanced(msg, len, "after fini()"))
        rc = CHILD_FAIL;
    return rc;
}

/* The kinds of late calls: cancelled before it starts, attempt deadline passed, run
 * deadline passed. */
typedef enum { LATE_CANCELLED, LATE_ATTEMPT, LATE_RUN } late_kind;

static int child_late(kit *k, const void *arg, char *msg, size_t len)
{
    late_kind kind = *(const late_kind *)arg;
    kit_call kc;
    int64_t now = fr__mono_us();
    if (kit_begin(k, &kc, kind == LATE_ATTEMPT ? now - 1000 : 0, msg, len) != 0)
        return CHILD_FAIL;
    if (kind == LATE_CANCELLED)
        fr__cancel_fire(kc.cancel);
    if (kind == LATE_RUN)
        kc.cancel->run_deadline_mono = now - 1000;
    fr_status expect = fr__call_check(&kc.call);
    char *out;
    size_t out_len;
    int64_t t0 = fr__mono_us();
    fr_status st = kit_invoke(k, &kc.call, kit_sample(k), &out, &out_len);
    int64_t ms = (fr__mono_us() - t0) / 1000;
    int rc = CHILD_PASS;
    if (st == FR_OK) {
        if (check_output(k, out, out_len, msg, len) != 0)
            rc = CHILD_FAIL;
        else
            snprintf(msg, len, "finished quickly with FR_OK (%lld ms)", (long long)ms);
    } else if (st == expect || st == FR_E_CANCELLED || st == FR_E_TIMEOUT ||
               st == FR_E_DEADLINE_EXCEEDED) {
        snprintf(msg, len, "returned %s in %lld ms", fr_status_name(st), (long long)ms);
    } else {
        snprintf(msg, len,
                 "returned %s (%s); expected %s, the status host->check_cancel and "
                 "host->sleep_us give",
                 fr_status_name(st), kc.call.error ? kc.call.error : fr_strerror(st),
                 fr_status_name(expect));
        rc = CHILD_FAIL;
    }
    kit_end(k, &kc);
    return rc;
}

/* Two fresh instances, the same seed, input and virtual clock: the same bytes. */
static int child_determinism(kit *k, const void *arg, char *msg, size_t len)
{
    /* Run 1 records every effect the plugin asks the host for; run 2 replays them from
     * that recording, as `fluxroute replay` does: the same requests must come in the same
     * order, and the output must be byte for byte the same. */
    const char *input = arg;
    char *first = NULL;
    size_t first_len = 0;
    json_object *effects = json_object_new_array(), *trace = NULL;
    fr_replay *rp = NULL;
    fr_replay_cursor cursor;
    int rc = CHILD_PASS;
    size_t n_effects = 0;
    for (int round = 0; round < 2 && rc == CHILD_PASS; round++) {
        virtual_clock = KIT_EPOCH_US;
        kit_call kc;
        if (kit_begin(k, &kc, 0, msg, len) != 0) {
            rc = CHILD_FAIL;
            break;
        }
        if (round == 0) {
            kc.call.effects = effects;
        } else {
            /* The recording as a one-step trace. */
            trace = json_object_new_object();
            json_object *steps = json_object_new_array(), *step = json_object_new_object();
            json_object *atts = json_object_new_array(), *att = json_object_new_object();
            json_object_object_add(att, "effects", json_object_get(effects));
            json_object_array_add(atts, att);
            json_object_object_add(step, "step", json_object_new_string(kc.call.step_id));
            json_object_object_add(step, "attempts", atts);
            json_object_array_add(steps, step);
            json_object_object_add(trace, "steps", steps);
            rp = fr__replay_new(trace, NULL);
            fr__replay_cursor_init(&cursor, rp, kc.call.step_id, 0, kc.call.attempt, k->d->name);
            kc.call.replay = &cursor;
        }
        char *out;
        size_t out_len;
        fr_status st = kit_invoke(k, &kc.call, input, &out, &out_len);
        if (round == 1)
            fr__replay_attempt_done(&cursor);
        json_object *div = rp ? fr__replay_divergence(rp) : NULL;
        if (div) {
            json_object *path = json_object_object_get(div, "path");
            json_object *note = json_object_object_get(div, "note");
            snprintf(msg, len, "replay diverged at %s: %s", json_object_get_string(path),
                     note ? json_object_get_string(note) : "different effect");
            rc = CHILD_FAIL;
        } else if (st != FR_OK || !out) {
            snprintf(msg, len, "%s returned %s: %s", round ? "replay" : "recording",
                     fr_status_name(st), kc.call.error ? kc.call.error : fr_strerror(st));
            rc = CHILD_FAIL;
        } else if (round == 0) {
            n_effects = json_object_array_length(effects);
            if ((first = malloc(out_len + 1)) != NULL) {
                memcpy(first, out, out_len);
                first_len = out_len;
            } else {
                rc = CHILD_FAIL;
            }
        } else if (out_len != first_len || memcmp(out, first, out_len) != 0) {
            size_t at = 0;
            while (at < out_len && at < first_len && out[at] == first[at])
                at++;
            snprintf(msg, len,
                     "replayed output differs at byte %zu (%zu vs %zu bytes): \"%.40s\" vs "
                     "\"%.40s\"",
                     at, first_len, out_len, first + (at < first_len ? at : first_len),
                     out + (at < out_len ? at : out_len));
            rc = CHILD_FAIL;
        }
        kc.call.effects = NULL;
        kc.call.replay = NULL;
        kit_end(k, &kc);
    }
    if (rc == CHILD_PASS)
        snprintf(msg, len,
                 "recorded %zu effect(s) with seed %llu; the replay made the same "
                 "requests and gave the same %zu bytes",
                 n_effects, (unsigned long long)KIT_SEED, first_len);
    free(first);
    fr__replay_free(rp);
    json_object_put(trace);
    json_object_put(effects);
    return rc;
}

/* One allocation-failure round: host allocation number *arg fails (counted from before
 * init()).  CHILD_NOT_FIRED when the plugin made fewer allocations. */
static int child_alloc_fail(kit *k, const void *arg, char *msg, size_t len)
{
    long n = *(const long *)arg;
    fr__alloc_fail_after(n);
    fr_status st = kit_init(k, msg, len);
    if (st != FR_OK) {
        if (alloc_calls < n) {
            char why[KIT_MSG];
            snprintf(why, sizeof why, "%s", msg);
            snprintf(msg, len, "init() failed without an injected failure: %s", why);
            return CHILD_FAIL;
        }
        if (!heap_balanced(msg, len, "after init() failed"))
            return CHILD_FAIL;
        snprintf(msg, len, "init:%s", fr_status_name(st));
        return CHILD_PASS;
    }
    kit_call kc;
    if (kit_call_begin(k, &kc, 0) != 0) {
        kit_fini(k);
        return CHILD_FAIL;
    }
    char *out;
    size_t out_len;
    st = kit_invoke(k, &kc.call, kit_sample(k), &out, &out_len);
    int fired = alloc_calls >= n;
    int rc = CHILD_PASS;
    if (st == FR_OK) {
        /* A plugin may get by without the failed block; its output must still be good. */
        if (check_output(k, out, out_len, msg, len) != 0)
            rc = CHILD_FAIL;
        else
            snprintf(msg, len, "invoke:OK");
    } else if (st > 0) {
        snprintf(msg, len, "returned positive status %d", st);
        rc = CHILD_FAIL;
    } else {
        snprintf(msg, len, "invoke:%s", fr_status_name(st));
        if (!fired) {
            snprintf(msg, len, "returned %s without an injected failure", fr_status_name(st));
            rc = CHILD_FAIL;
        }
    }
    kit_call_end(&kc);
    fr__alloc_fail_after(0);
    kit_fini(k);
    if (rc == CHILD_PASS && !heap_balanced(msg, len, "after fini()"))
        rc = CHILD_FAIL;
    if (rc == CHILD_PASS && !fired)
        rc = CHILD_NOT_FIRED;
    return rc;
}

static void check_alloc_failures(kit *k)
{
    char msg[KIT_MSG], non_nomem[KIT_MSG] = "";
    long n;
    for (n = 1; n <= KIT_MAX_ALLOC_FAIL; n++) {
        int rc = run_isolated(k, child_alloc_fail, &n, KIT_CALL_TIMEOUT_MS, 1, msg, sizeof msg);
        if (rc == CHILD_NOT_FIRED)
            break;
        if (rc != CHILD_PASS) {
            add_check(k, "allocation failure", KIT_FAIL, "when host allocation #%ld failed: %s", n,
                      msg);
            return;
        }
        const char *status = strchr(msg, ':');
        if (status && strcmp(status + 1, "NOMEM") != 0 && strcmp(status + 1, "OK") != 0 &&
            !non_nomem[0])
            snprintf(non_nomem, sizeof non_nomem, " (allocation #%ld gave %s, not NOMEM)", n,
                     status + 1);
    }
    if (n == 1)
        add_check(k, "allocation failure", KIT_PASS, "no host allocations to fail");
    else
        add_check(k, "allocation failure", KIT_PASS,
                  "each of host allocations 1..%ld failed in turn: error status, no crash, no "
                  "leak%s",
                  n - 1, non_nomem);
}

/* ---- the command ---------------------------------------------------------------------- */

static const cli_command test_cmd = {
    "plugins test", NULL, "check a plugin file against the host's expectations",
    "usage: fluxroute plugins test PATH.so [--json] [--config YAML] [--sample FILE]\n"
    "\n"
    "Loads the plugin and runs the conformance checks: descriptor, option table (docs,\n"
    "defaults), direct calls the host cannot record (time, sleep, rand, sockets, fork,\n"
    "threads...) and, as warnings, the same calls made by the libraries it links,\n"
    "init/fini symmetry, sample calls, an already-cancelled call and calls\n"
    "past their deadline (each must return within 2 s), determinism (two runs, same\n"
    "bytes), and every host allocation failing in turn (error status, no crash).\n"
    "Plugin code runs in child processes, so a crash or a hang is a failed check.\n"
    "\n"
    "  --json         print the results as JSON\n"
    "  --config YAML  the plugin's config for the runtime checks (default: option\n"
    "                 defaults, with sample values for required options)\n"
    "  --sample FILE  the JSON the plugin receives in the sample calls instead of the\n"
    "                 built-in inputs: an agent's {\"input\": {...}, \"steps\": {...}},\n"
    "                 a provider's chat request.  Without it, a plugin that refuses the\n"
    "                 built-in input with FR_E_INVALID or FR_E_BAD_REQUEST is reported\n"
    "                 as \"needs input\", not as a failure.\n"
    "\n"
    "Exit: 0 no check failed (warnings and \"needs input\" are not failures), 1 a check\n"
    "failed (or the loader refused the file),\n"
    "2 usage error.\n"};

/* Reads --sample FILE: one JSON object (strictly: NaN, comments, trailing commas are
 * refused at their line and column).  An agent's sample is {"input": ..., "steps": ...}
 * ("steps" may be left out: {} then); any other member is refused by name, since the
 * plugin would never see it.  Returns the compact JSON (owned), or NULL after printing
 * why. */
static char *read_sample(const char *path)
{
    size_t len;
    char *text = fr__file_read(path, &len);
    if (!text) {
        fr__cli_error(&test_cmd, "--sample %s: %s", path, strerror(errno));
        return NULL;
    }
    json_object *v = NULL;
    char label[PATH_MAX + 16];
    snprintf(label, sizeof label, "--sample %s", path);
    int bad = fr__cli_parse_json(&test_cmd, label, text, len, &v) != 0;
    free(text);
    if (bad)
        return NULL;
    if (!v || !json_object_is_type(v, json_type_object)) {
        fr__cli_error(&test_cmd, "--sample %s: expected a JSON object", path);
        json_object_put(v);
        return NULL;
    }
    char *out = NULL;
    if (json_object_object_get_ex(v, "input", NULL) ||
        json_object_object_get_ex(v, "steps", NULL)) {
        json_object_object_foreach(v, key, val)
        {
            (void)val;
            if (strcmp(key, "input") != 0 && strcmp(key, "steps") != 0) {
                fr__cli_error(&test_cmd,
                              "--sample %s: unknown field \"%s\" (an agent's sample is "
                              "{\"input\": {...}, \"steps\": {...}})",
                              path, key);
                json_object_put(v);
                return NULL;
            }
        }
        if (!json_object_object_get_ex(v, "steps", NULL))
            json_object_object_add(v, "steps", json_object_new_object());
    }
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    out = s ? strdup(s) : NULL;
    json_object_put(v);
    if (!out)
        fr__cli_error(&test_cmd, "out of memory");
    return out;
}

static const char *result_name(kit_result r)
{
    static const char *const names[] = {"pass", "fail", "skip", "warn", "needs input"};
    return names[r];
}

static void print_results(const kit *k, int json)
{
    size_t passed = 0, failed = 0, warned = 0, needs_input = 0;
    for (size_t i = 0; i < k->n_checks; i++) {
        passed += k->checks[i].result == KIT_PASS;
        failed += k->checks[i].result == KIT_FAIL;
        warned += k->checks[i].result == KIT_WARN;
        needs_input += k->checks[i].result == KIT_NEEDS_INPUT;
    }
    if (json) {
        json_object *root = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(root, "path", json_object_new_string(k->path));
        json_object_object_add(root, "name", k->d ? json_object_new_string(k->d->name) : NULL);
        json_object_object_add(root, "passed", json_object_new_boolean(failed == 0));
        json_object_object_add(root, "needs_input", json_object_new_boolean(needs_input > 0));
        for (size_t i = 0; i < k->n_checks; i++) {
            json_object *c = json_object_new_object();
            json_object_object_add(c, "check", json_object_new_string(k->checks[i].name));
            json_object_object_add(c, "result",
                                   json_object_new_string(result_name(k->checks[i].result)));
            json_object_object_add(c, "message", json_object_new_string(k->checks[i].message));
            json_object_array_add(arr, c);
        }
        json_object_object_add(root, "checks", arr);
        fr__cli_print_json(root);
        return;
    }
    printf("%-20s %-11s %s\n", "CHECK", "RESULT", "DETAILS");
    for (size_t i = 0; i < k->n_checks; i++)
        printf("%-20s %-11s %s\n", k->checks[i].name, result_name(k->checks[i].result),
               k->checks[i].message);
    printf("%s: %zu passed, %zu failed", k->path, passed, failed);
    if (warned)
        printf(", %zu warning%s", warned, warned == 1 ? "" : "s");
    if (needs_input)
        printf(", %zu need%s input (give a sample with --sample FILE)", needs_input,
               needs_input == 1 ? "s" : "");
    printf("\n");
}

static void run_checks(kit *k, const char *config_yaml)
{
    check_descriptor(k);
    check_options(k, config_yaml);
    check_symbols(k);
    check_libraries(k);
    static const char *const runtime[] = {"init/fini",   "sample call",       "nested call",
                                          "cancelled",   "attempt deadline",  "run deadline",
                                          "determinism", "allocation failure"};
    if (!k->cfg_ok || !k->d->init) {
        for (size_t i = 0; i < sizeof runtime / sizeof runtime[0]; i++)
            add_check(k, runtime[i], KIT_SKIP, "%s",
                      k->cfg_ok ? "no init callback" : "the options could not be filled");
        return;
    }
    k->inst.id = "conformance";
    k->inst.plugin = k->lp;
    k->inst.config = k->cfg;
    k->inst.provider = &stub_provider;
    char msg[KIT_MSG];
    int provider = k->d->kind == FR_PLUGIN_PROVIDER;

    int rc = run_isolated(k, child_init_fini, NULL, KIT_CALL_TIMEOUT_MS, 0, msg, sizeof msg);
    add_child_check(k, "init/fini", rc, msg);

    const char *first = k->sample ? k->sample : provider ? sample_chat : sample_empty;
    rc = run_isolated(k, child_sample, first, KIT_CALL_TIMEOUT_MS, 0, msg, sizeof msg);
    add_child_check(k, "sample call", rc, msg);
    int sample_rc = rc; /* the result for kit_sample()'s input */
    if (!provider) {
        rc = run_isolated(k, child_sample, sample_nested, KIT_CALL_TIMEOUT_MS, 0, msg, sizeof msg);
        add_child_check(k, "nested call", rc, msg);
        if (!k->sample)
            sample_rc = rc;
    }
    if (sample_rc == CHILD_NEEDS_INPUT) {
        /* The later checks call with that input too: they would only see it refused. */
        static const char *const later[] = {"cancelled", "attempt deadline", "run deadline",
                                            "determinism", "allocation failure"};
        for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
            add_check(k, later[i], KIT_NEEDS_INPUT,
                      "not run: the plugin refused the built-in input; give one with --sample "
                      "FILE");
        return;
    }

    static const late_kind lates[] = {LATE_CANCELLED, LATE_ATTEMPT, LATE_RUN};
    static const char *const late_names[] = {"cancelled", "attempt deadline", "run deadline"};
    for (size_t i = 0; i < 3; i++) {
        rc = run_isolated(k, child_late, &lates[i], KIT_CANCEL_TIMEOUT_MS, 0, msg, sizeof msg);
        add_child_check(k, late_names[i], rc, msg);
    }

    rc = run_isolated(k, child_determinism, kit_sample(k), KIT_CALL_TIMEOUT_MS, 0, msg, sizeof msg);
    add_child_check(k, "determinism", rc, msg);

    check_alloc_failures(k);
}

int fr__cmd_plugins_test(const cli_command *cmd, int argc, char **argv)
{
    (void)cmd;
    const char *pos[1], *config_yaml = NULL, *sample_path = NULL;
    size_t n_pos;
    int json = 0;
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json},
                            {"--config", 1, &config_yaml, NULL, NULL},
                            {"--sample", 1, &sample_path, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(&test_cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(&test_cmd, "expected one plugin file (see fluxroute plugins test --help)");
        return FR_EXIT_USAGE;
    }
    struct stat st;
    if (stat(pos[0], &st) != 0) {
        fr__cli_error(&test_cmd, "%s: %s", pos[0], strerror(errno));
        return FR_EXIT_USAGE;
    }
    kit k = {.path = pos[0]};
    char *sample = NULL;
    if (sample_path && !(sample = read_sample(sample_path)))
        return FR_EXIT_USAGE;
    k.sample = sample;
    kit_host_init();
    virtual_clock = KIT_EPOCH_US;
    fr_loader *l = fr__loader_new();
    if (!l) {
        fr__cli_error(&test_cmd, "out of memory");
        free(sample);
        return FR_EXIT_FAILED;
    }
    char err[1024];
    if (fr__loader_load_file(l, pos[0], &k.lp, err, sizeof err) != 0) {
        add_check(&k, "load", KIT_FAIL, "%s", err);
    } else {
        k.d = k.lp->desc;
        add_check(&k, "load", KIT_PASS, "%s (sha256 %.16s...)", k.lp->path, k.lp->sha256);
        run_checks(&k, config_yaml);
    }
    print_results(&k, json);
    int failed = 0;
    for (size_t i = 0; i < k.n_checks; i++)
        failed |= k.checks[i].result == KIT_FAIL;
    fr__config_free(&k.cfg);
    fr__loader_free(l);
    free(sample);
    return failed ? FR_EXIT_FAILED : FR_EXIT_OK;
}
