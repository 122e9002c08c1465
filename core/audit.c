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
 * forks.  That file mutex is not the queue's: a thread handing a line to the writer never
 * waits for a write (or for a write stalled behind the periodic fsync).  Durability:
 * AUDIT_FSYNC=line (default: the line is written and fsynced before the action goes on), batch or
 * off.  In batch and off modes lines are handed to one writer thread that appends everything queued
 * in one go (one lock, one write for a group of lines: under load this is what keeps auditing off
 * the request path) and, in batch mode, fsyncs at most every 100 ms; at exit the queue is written
 * and synced. */
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

#include "bytebuf.h"
#include "obs_impl.h"
#include "trace.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

enum fsync_mode { FSYNC_LINE, FSYNC_BATCH, FSYNC_OFF };

/* Lock order: mu, then file_mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;      /* the queue and the writer */
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER; /* the file and appends */
static char *env_path;
static enum fsync_mode mode = FSYNC_LINE;
/* The open file and what we know of its end (file_mu held). */
static char *open_path;
static int fd = -1;
static dev_t fd_dev;
static ino_t fd_ino;
static off_t known_size = -1;
static char known_hash[65];
/* The writer thread of batch/off modes (mu held for these). */
static pthread_t flusher;
static int flusher_started, flusher_stop;
static pthread_cond_t flush_cv;
/* Lines waiting for the writer: their text up to the "prev" member, in order. */
typedef struct queued_line {
    struct queued_line *next;
    char *path;
    char *prefix;
    size_t len;
} queued_line;
static queued_line *queue_head, **queue_tail = &queue_head;
static int writer_waiting; /* the writer sleeps on flush_cv: an append must wake it */

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

static size_t write_queued(queued_line *batch);

static void *flusher_main(void *arg)
{
    (void)arg;
    int64_t last_sync = 0;
    size_t unsynced = 0; /* lines written since the last fsync */
    pthread_mutex_lock(&mu);
    for (;;) {
        if (!queue_head && !flusher_stop) {
            /* Sleep until lines arrive, or until a pending fsync is due. */
            int64_t due = last_sync + 100000;
            struct timespec ts = {.tv_sec = due / 1000000, .tv_nsec = (due % 1000000) * 1000};
            writer_waiting = 1;
            if (unsynced)
                pthread_cond_timedwait(&flush_cv, &mu, &ts);
            else
                pthread_cond_wait(&flush_cv, &mu);
            writer_waiting = 0;
        }
        if (queue_head) {
            queued_line *batch = queue_head;
            queue_head = NULL;
            queue_tail = &queue_head;
            int stopping = flusher_stop;
            /* Written without the queue's lock: appenders keep queueing meanwhile. */
            pthread_mutex_unlock(&mu);
            pthread_mutex_lock(&file_mu);
            unsynced += write_queued(batch);
            pthread_mutex_unlock(&file_mu);
            if (!stopping) {
                /* Let a group gather: under load the writer then wakes once a
                 * millisecond, not once a line. */
                struct timespec gather = {0, 1000 * 1000};
                nanosleep(&gather, NULL);
            }
            pthread_mutex_lock(&mu);
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        if (unsynced && mode == FSYNC_BATCH && (flusher_stop || now_us - last_sync >= 100000)) {
            unsynced = 0;
            last_sync = now_us;
            pthread_mutex_unlock(&mu);
            pthread_mutex_lock(&file_mu);
            int dfd = fd >= 0 ? dup(fd) : -1;
            pthread_mutex_unlock(&file_mu);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            pthread_mutex_lock(&mu);
        } else if (mode == FSYNC_OFF) {
            unsynced = 0;
        }
        if (flusher_stop && !queue_head)
            break;
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
    pthread_mutex_lock(&file_mu);
    if (fd >= 0) {
        if (mode != FSYNC_OFF)
            fsync(fd);
        close(fd);
        fd = -1;
    }
    free(open_path);
    open_path = NULL;
    pthread_mutex_unlock(&file_mu);
    pthread_mutex_unlock(&mu);
}

/* ---- appending ------------------------------------------------------------------------ */

/* Opens `path` (file_mu held), reopening when it is another file or was rotated away. */
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

/* The line's text up to its "prev" member: {"time":...,"error":... (no closing brace). */
static char *line_prefix(const fr_audit_event *ev, size_t *len)
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

/* Appends `lines` (a list, in order) to `path` as chained lines with one write (file_mu
 * held).  Returns 0, or -1 with err set. */
static int append_lines(const char *path, queued_line *lines, char *err, size_t errlen)
{
    if (ensure_open(path, err, errlen) != 0)
        return -1;
    if (flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    struct stat st;
    char prev[65], hash[65];
    int ends_nl = 1;
    fr_bytebuf out = {0};
    size_t n = 0;
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
    for (queued_line *l = lines; l; l = l->next, n++) {
        /* body = prefix,"prev":"<prev>"   line = body,"hash":"<sha256(body)>"}\n */
        if (!fr__bytebuf_reserve(&out, l->len + 160)) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        /* A torn last line (no newline) stays a line of its own; verification flags it. */
        if (n == 0 && !ends_nl)
            out.data[out.len++] = '\n';
        char *body = out.data + out.len;
        memcpy(body, l->prefix, l->len);
        size_t body_len = l->len;
        body_len += (size_t)sprintf(body + body_len, ",\"prev\":\"%s\"", prev);
        fr__sha256_hex(body, body_len, hash);
        size_t line_len = body_len + (size_t)sprintf(body + body_len, ",\"hash\":\"%s\"}", hash);
        fr__sha256_hex(body, line_len, prev); /* the next line's prev */
        body[line_len] = '\n';
        out.len += line_len + 1;
    }
    if (write_all(fd, out.data, out.len) != 0) {
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
        known_size = -1;
        goto out;
    }
    memcpy(known_hash, prev, sizeof known_hash);
    known_size = st.st_size + (off_t)out.len;
    rc = 0;
out:
    flock(fd, LOCK_UN);
    free(out.data);
    return rc;
}

static void free_lines(queued_line *l)
{
    while (l) {
        queued_line *next = l->next;
        free(l->path);
        free(l->prefix);
        free(l);
        l = next;
    }
}

/* The writer thread's share (file_mu held): the queued lines, a group per path.  Returns
 * how many were written. */
static size_t write_queued(queued_line *batch)
{
    size_t written = 0;
    while (batch) {
        queued_line *end = batch;
        while (end->next && strcmp(end->next->path, batch->path) == 0)
            end = end->next;
        queued_line *rest = end->next;
        end->next = NULL;
        char err[512];
        if (append_lines(batch->path, batch, err, sizeof err) != 0) {
            fprintf(stderr, "fluxroute: audit log: %s\n", err);
            fr__metric_count(FR_M_AUDIT_WRITE_ERRORS, NULL, 1);
        } else {
            for (queued_line *l = batch; l; l = l->next)
                written++;
        }
        free_lines(batch);
        batch = rest;
    }
    return written;
}

int fr__audit_append(const char *path, const fr_audit_event *ev, char *err, size_t errlen)
{
    fr__obs_init();
    queued_line *l = calloc(1, sizeof *l);
    if (l) {
        l->prefix = line_prefix(ev, &l->len);
        l->path = strdup(path);
    }
    if (!l || !l->prefix || !l->path) {
        free_lines(l);
        snprintf(err, errlen, "out of memory");
        fr__metric_count(FR_M_AUDIT_WRITE_ERRORS, NULL, 1);
        return -1;
    }
    pthread_mutex_lock(&mu);
    if (mode != FSYNC_LINE)
        start_flusher(); /* falls back to line mode when it cannot */
    if (mode != FSYNC_LINE) {
        /* The writer thread appends it with whatever else is queued. */
        *queue_tail = l;
        queue_tail = &l->next;
        if (writer_waiting)
            pthread_cond_signal(&flush_cv);
        pthread_mutex_unlock(&mu);
        return 0;
    }
    pthread_mutex_unlock(&mu);
    pthread_mutex_lock(&file_mu);
    int rc = append_lines(path, l, err, errlen);
    int sync_fd = rc == 0 ? dup(fd) : -1;
    pthread_mutex_unlock(&file_mu);
    if (sync_fd >= 0) {
        if (fsync(sync_fd) != 0 && rc == 0) {
            snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
            rc = -1;
        }
        close(sync_fd);
    }
    free_lines(l);
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
