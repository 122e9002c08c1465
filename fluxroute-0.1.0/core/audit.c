/* The audit log: one JSON line per action (run, validate, replay, admin; denials
 * included), appended to AUDIT_LOG_PATH as a hash chain.
 *
 * Each line is a JSON object whose last two members are "prev", the sha256 of the whole
 * previous line (64 zeros for the first), and "hash", the sha256 of the line's own text
 * up to (not including) `,"hash":`.  So an edited line fails its own hash, and a line
 * deleted, inserted or moved breaks the next line's prev (`fluxroute audit-verify`).
 *
 * Appends take a process mutex (threads share one descriptor) and an exclusive flock
 * (other processes) around reading the last line's hash and writing, so the chain never
 * forks.  Durability: AUDIT_FSYNC=line (default: fsync after every line), batch (a
 * background thread fsyncs at most every 100 ms or every 64 lines, and at exit) or off. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "obs_impl.h"
#include "trace.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

enum fsync_mode { FSYNC_LINE, FSYNC_BATCH, FSYNC_OFF };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *env_path;
static enum fsync_mode mode = FSYNC_LINE;
/* The open file and what we know of its end (mu held). */
static char *open_path;
static int fd = -1;
static dev_t fd_dev;
static ino_t fd_ino;
static off_t known_size = -1;
static char known_hash[65];
/* Batch fsync (mu held for these). */
static pthread_t flusher;
static int flusher_started, flusher_stop, pending;
static pthread_cond_t flush_cv;

void fr__audit_init(void)
{
    const char *p = getenv("AUDIT_LOG_PATH");
    while (p && (*p == ' ' || *p == '\t'))
        p++;
    if (p && *p)
        env_path = strdup(p);
    const char *f = getenv("AUDIT_FSYNC");
    if (f && strcasecmp(f, "batch") == 0)
        mode = FSYNC_BATCH;
    else if (f && strcasecmp(f, "off") == 0)
        mode = FSYNC_OFF;
    else if (f && *f && strcasecmp(f, "line") != 0)
        fprintf(stderr, "fluxroute: AUDIT_FSYNC=\"%s\" is not line, batch or off; using line\n", f);
}

/* ---- the background fsync of AUDIT_FSYNC=batch ---------------------------------------- */

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!flusher_stop || pending) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!flusher_stop && pending < 64)
            if (pthread_cond_timedwait(&flush_cv, &mu, &ts) == ETIMEDOUT)
                break;
        if (pending && fd >= 0) {
            int dfd = dup(fd);
            pending = 0;
            pthread_mutex_unlock(&mu);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            pthread_mutex_lock(&mu);
        } else if (flusher_stop) {
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* mu held. */
static void start_flusher(void)
{
    if (flusher_started)
        return;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&flush_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&flusher, NULL, flusher_main, NULL) == 0)
        flusher_started = 1;
    else
        mode = FSYNC_LINE;
}

void fr__audit_shutdown(void)
{
    pthread_mutex_lock(&mu);
    int started = flusher_started;
    flusher_stop = 1;
    if (started)
        pthread_cond_broadcast(&flush_cv);
    pthread_mutex_unlock(&mu);
    if (started)
        pthread_join(flusher, NULL);
    pthread_mutex_lock(&mu);
    flusher_started = 0;
    if (fd >= 0) {
        if (mode != FSYNC_OFF)
            fsync(fd);
        close(fd);
        fd = -1;
    }
    free(open_path);
    open_path = NULL;
    pthread_mutex_unlock(&mu);
}

/* ---- appending ------------------------------------------------------------------------ */

/* Opens `path` (mu held), reopening when it is another file or was rotated away. */
static int ensure_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fd >= 0 && open_path && strcmp(open_path, path) == 0 && stat(path, &st) == 0 &&
        st.st_dev == fd_dev && st.st_ino == fd_ino)
        return 0;
    if (fd >= 0)
        close(fd);
    free(open_path);
    open_path = NULL;
    known_size = -1;
    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
        return -1;
    }
    open_path = strdup(path);
    fd_dev = st.st_dev;
    fd_ino = st.st_ino;
    return 0;
}

/* sha256 of the last line of the file (size bytes; without its newline) into out;
 * ZERO_HASH for an empty file.  *ends_nl tells whether the file ends with a newline. */
static int last_line_hash(off_t size, char out[65], int *ends_nl)
{
    *ends_nl = 1;
    if (size == 0) {
        strcpy(out, ZERO_HASH);
        return 0;
    }
    char c;
    if (pread(fd, &c, 1, size - 1) != 1)
        return -1;
    off_t end = size;
    if (c == '\n')
        end--;
    else
        *ends_nl = 0;
    off_t start = 0, pos = end;
    char buf[4096];
    while (pos > 0) {
        off_t from = pos > (off_t)sizeof buf ? pos - (off_t)sizeof buf : 0;
        ssize_t n = pread(fd, buf, (size_t)(pos - from), from);
        if (n != pos - from)
            return -1;
        ssize_t i = n;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        if (i > 0) {
            start = from + i;
            break;
        }
        pos = from;
    }
    size_t len = (size_t)(end - start);
    char *line = malloc(len ? len : 1);
    if (!line || pread(fd, line, len, start) != (ssize_t)len) {
        free(line);
        return -1;
    }
    fr__sha256_hex(line, len, out);
    free(line);
    return 0;
}

static json_object *str_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *c = fr__obs_scrub(s);
    json_object *o = c ? json_object_new_string(c) : NULL;
    free(c);
    return o;
}

/* The line's text up to its hash member: {...,"prev":"<prev>" (no closing brace). */
static char *line_body(const fr_audit_event *ev, const char *prev, size_t *len)
{
    char ts[32];
    fr__obs_timestamp(ts);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "time", json_object_new_string(ts));
    json_object_object_add(o, "actor", str_or_null(ev->actor));
    json_object_object_add(o, "role", str_or_null(ev->role));
    json_object_object_add(o, "tenant", str_or_null(ev->tenant));
    json_object_object_add(o, "namespace", str_or_null(ev->namespace_));
    json_object_object_add(o, "action", str_or_null(ev->action));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "manifest", str_or_null(ev->manifest));
    json_object_object_add(r, "manifest_sha256", str_or_null(ev->manifest_sha256));
    json_object_object_add(r, "run_id", str_or_null(ev->run_id));
    if (ev->lease_key) {
        char tok[24];
        snprintf(tok, sizeof tok, "%llu", (unsigned long long)ev->fencing_token);
        json_object_object_add(r, "lease_key", json_object_new_string(ev->lease_key));
        json_object_object_add(r, "fencing_token", json_object_new_string(tok));
    }
    json_object_object_add(o, "resource", r);
    json_object_object_add(o, "decision", str_or_null(ev->decision));
    json_object_object_add(o, "result", str_or_null(ev->result));
    json_object_object_add(o, "error", str_or_null(ev->error));
    json_object_object_add(o, "prev", json_object_new_string(prev));
    size_t n = 0;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    char *out = text && n > 2 ? strndup(text, n - 1) : NULL; /* drop the closing brace */
    *len = out ? n - 1 : 0;
    json_object_put(o);
    return out;
}

static int write_all(int f, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(f, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fr__audit_append(const char *path, const fr_audit_event *ev, char *err, size_t errlen)
{
    fr__obs_init();
    pthread_mutex_lock(&mu);
    if (ensure_open(path, err, errlen) != 0) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    if (flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
        pthread_mutex_unlock(&mu);
        return -1;
    }
    int rc = -1;
    struct stat st;
    char prev[65], hash[65];
    int ends_nl = 1;
    char *body = NULL, *line = NULL;
    size_t body_len = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size == known_size) {
        memcpy(prev, known_hash, sizeof prev); /* nobody appended since our last line */
    } else if (last_line_hash(st.st_size, prev, &ends_nl) != 0) {
        snprintf(err, errlen, "%s: cannot read its last line", path);
        goto out;
    }
    if (!(body = line_body(ev, prev, &body_len))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fr__sha256_hex(body, body_len, hash);
    /* A torn last line (no newline) stays a line of its own; verification flags it. */
    if (asprintf(&line, "%s%s,\"hash\":\"%s\"}\n", ends_nl ? "" : "\n", body, hash) < 0) {
        line = NULL;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t line_len = strlen(line);
    if (write_all(fd, line, line_len) != 0) {
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
        known_size = -1;
        goto out;
    }
    const char *own = ends_nl ? line : line + 1;
    fr__sha256_hex(own, strlen(own) - 1, known_hash);
    known_size = st.st_size + (off_t)line_len;
    rc = 0;
out:
    flock(fd, LOCK_UN);
    int sync_fd = -1;
    if (rc == 0 && mode == FSYNC_LINE)
        sync_fd = dup(fd);
    else if (rc == 0 && mode == FSYNC_BATCH) {
        start_flusher();
        if (++pending >= 64 && flusher_started)
            pthread_cond_signal(&flush_cv);
    }
    pthread_mutex_unlock(&mu);
    if (sync_fd >= 0) {
        if (fsync(sync_fd) != 0 && rc == 0) {
            snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
            rc = -1;
        }
        close(sync_fd);
    }
    free(body);
    free(line);
    if (rc != 0)
        fr__metric_count(FR_M_AUDIT_WRITE_ERRORS, NULL, 1);
    return rc;
}

int fr__audit_log(const fr_audit_event *ev)
{
    fr__obs_init();
    if (!env_path)
        return 0;
    char err[512];
    if (fr__audit_append(env_path, ev, err, sizeof err) != 0) {
        fprintf(stderr, "fluxroute: audit log: %s\n", err);
        return -1;
    }
    return 0;
}

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
    fr__obs_init();
    if (!env_path || __atomic_exchange_n(&written, 1, __ATOMIC_ACQ_REL))
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
