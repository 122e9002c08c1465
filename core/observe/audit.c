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
 * and synced, and a line appended while or after the log shuts down is written and synced by
 * its own thread (tests/observe/test_audit.c). */
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

#include "base/bytebuf.h"
#include "observe/obs_impl.h"
#include "base/sha256.h"

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
/* The fsync thread of batch mode: the writer asks it for an fsync at most every 100 ms and
 * goes on writing meanwhile, so a slow fsync does not make the next batch larger (mu held). */
static pthread_t syncer;
static int syncer_started, syncer_stop, sync_wanted;
static pthread_cond_t sync_cv = PTHREAD_COND_INITIALIZER;
/* Lines waiting for the writer, packed one after another in one buffer: a queued_hdr, the
 * path, then the line's text up to its "prev" member.  The writer swaps the buffer for its
 * own emptied one, so no line costs an allocation.  Both buffers are allocated and touched
 * when the writer starts, QUEUE_CAP bytes each (about 5,000 lines: 130 ms at 40,000 lines/s,
 * longer than the write stalls seen behind fsync), so memory stays flat under load.  An
 * appender waits while its line does not fit: a stalled disk slows requests down rather than
 * growing the heap (audit lines are never dropped). */
typedef struct queued_hdr {
    uint32_t path_len, text_len;
} queued_hdr;
#define QUEUE_CAP ((size_t)2 << 20)
static fr_bytebuf queue, writer_buf;
static int writer_waiting;    /* the writer sleeps on flush_cv: an append must wake it */
static int appenders_waiting; /* appenders sleep on space_cv until the writer takes the queue */
static pthread_cond_t space_cv = PTHREAD_COND_INITIALIZER;
/* The text of one write (file_mu held), kept between writes; the writer writes a batch in
 * pieces of about WRITE_CHUNK bytes. */
static fr_bytebuf out;
#define WRITE_CHUNK ((size_t)256 << 10)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Reads AUDIT_LOG_PATH and AUDIT_FSYNC, and has the log shut down at exit. */
static void init_from_env(void)
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
    atexit(fr__audit_shutdown);
}

void fr__audit_init(void)
{
    pthread_once(&init_once, init_from_env);
}

/* ---- the background fsync of AUDIT_FSYNC=batch ---------------------------------------- */

static size_t write_queued(const fr_bytebuf *batch);

/* fsyncs the open file (neither lock held). */
static void sync_file(void)
{
    pthread_mutex_lock(&file_mu);
    int dfd = fd >= 0 ? dup(fd) : -1;
    pthread_mutex_unlock(&file_mu);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

static void *syncer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-audit-sync");
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!sync_wanted && !syncer_stop)
            pthread_cond_wait(&sync_cv, &mu);
        if (!sync_wanted)
            break;
        sync_wanted = 0;
        pthread_mutex_unlock(&mu);
        sync_file();
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *flusher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "fr-audit");
    (void)arg;
    int64_t last_sync = 0;
    size_t unsynced = 0; /* lines written since the last fsync */
    pthread_mutex_lock(&mu);
    for (;;) {
        if (!queue.len && !flusher_stop) {
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
        if (queue.len) {
            fr_bytebuf batch = queue;
            queue = writer_buf;
            queue.len = 0;
            writer_buf = (fr_bytebuf){0};
            if (appenders_waiting)
                pthread_cond_broadcast(&space_cv);
            int stopping = flusher_stop;
            /* Written without the queue's lock: appenders keep queueing meanwhile. */
            pthread_mutex_unlock(&mu);
            pthread_mutex_lock(&file_mu);
            unsynced += write_queued(&batch);
            pthread_mutex_unlock(&file_mu);
            if (!stopping) {
                /* Let a group gather: under load the writer then wakes once a
                 * millisecond, not once a line. */
                struct timespec gather = {0, 1000 * 1000};
                nanosleep(&gather, NULL);
            }
            pthread_mutex_lock(&mu);
            writer_buf = batch; /* the next swap's empty buffer */
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        if (unsynced && mode == FSYNC_BATCH && (flusher_stop || now_us - last_sync >= 100000)) {
            unsynced = 0;
            last_sync = now_us;
            if (syncer_started) {
                sync_wanted = 1;
                pthread_cond_signal(&sync_cv);
            } else {
                pthread_mutex_unlock(&mu);
                sync_file();
                pthread_mutex_lock(&mu);
            }
        } else if (mode == FSYNC_OFF) {
            unsynced = 0;
        }
        if (flusher_stop && !queue.len)
            break;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Gives an empty buffer its capacity now, touched, so that it does not grow under load. */
static void preallocate(fr_bytebuf *b, size_t cap)
{
    if (b->cap < cap && fr__bytebuf_reserve(b, cap - 1 - b->len))
        memset(b->data + b->len, 0, b->cap - b->len);
    b->oom = 0;
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
    if (pthread_create(&flusher, NULL, flusher_main, NULL) != 0) {
        mode = FSYNC_LINE;
        return;
    }
    flusher_started = 1;
    preallocate(&queue, QUEUE_CAP);
    preallocate(&writer_buf, QUEUE_CAP);
    pthread_mutex_lock(&file_mu);
    preallocate(&out, 2 * WRITE_CHUNK);
    pthread_mutex_unlock(&file_mu);
    if (mode == FSYNC_BATCH && !syncer_started)
        syncer_started = pthread_create(&syncer, NULL, syncer_main, NULL) == 0;
}

void fr__audit_shutdown(void)
{
    pthread_mutex_lock(&mu);
    int started = flusher_started;
    flusher_stop = 1;
    if (started)
        pthread_cond_broadcast(&flush_cv);
    pthread_cond_broadcast(&space_cv);
    pthread_mutex_unlock(&mu);
    if (started)
        pthread_join(flusher, NULL);
    pthread_mutex_lock(&mu);
    int syncing = syncer_started;
    syncer_stop = 1;
    pthread_cond_signal(&sync_cv);
    pthread_mutex_unlock(&mu);
    if (syncing)
        pthread_join(syncer, NULL);
    pthread_mutex_lock(&mu);
    syncer_started = 0;
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
    free(out.data);
    out = (fr_bytebuf){0};
    pthread_mutex_unlock(&file_mu);
    free(queue.data);
    free(writer_buf.data);
    queue = writer_buf = (fr_bytebuf){0};
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

/* The line's text up to its "prev" member: {"time":...,"error":... (no closing brace), in
 * *text (NULL when memory ran out), owned by the returned object (release it). */
static json_object *line_prefix(const fr_audit_event *ev, const char **text, size_t *len)
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
    const char *t = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    *text = t && n > 2 ? t : NULL;
    *len = *text ? n - 1 : 0; /* without the closing brace */
    return o;
}

/* Appends one queued line (path, and text up to "prev") to b.  Returns 0, or -1 when memory
 * runs out (b is then as it was). */
static int put_record(fr_bytebuf *b, const char *path, const char *text, size_t text_len)
{
    size_t path_len = strlen(path) + 1; /* kept with its NUL: used in place */
    if (path_len > UINT32_MAX || text_len > UINT32_MAX ||
        !fr__bytebuf_reserve(b, sizeof(queued_hdr) + path_len + text_len)) {
        b->oom = 0;
        return -1;
    }
    queued_hdr h = {(uint32_t)path_len, (uint32_t)text_len};
    memcpy(b->data + b->len, &h, sizeof h);
    memcpy(b->data + b->len + sizeof h, path, path_len);
    memcpy(b->data + b->len + sizeof h + path_len, text, text_len);
    b->len += sizeof h + path_len + text_len;
    return 0;
}

/* The record at p: its path and text.  Returns where the next one starts. */
static const char *get_record(const char *p, const char **path, const char **text, size_t *text_len)
{
    queued_hdr h;
    memcpy(&h, p, sizeof h);
    *path = p + sizeof h;
    *text = *path + h.path_len;
    *text_len = h.text_len;
    return *text + h.text_len;
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

/* Writes `out` at the end of the file (file_mu and the flock held), which is then *size
 * bytes long.  Returns 0, or -1 with err set. */
static int write_out(const char *path, off_t *size, char *err, size_t errlen)
{
    if (write_all(fd, out.data, out.len) != 0) {
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
        known_size = -1;
        return -1;
    }
    *size += (off_t)out.len;
    out.len = 0;
    return 0;
}

/* Appends the records in [recs, end) (all for `path`, in order) to `path` as chained lines
 * with one write (file_mu held).  Returns 0, or -1 with err set. */
static int append_lines(const char *path, const char *recs, const char *end, char *err,
                        size_t errlen)
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
    out.len = 0;
    out.oom = 0;
    size_t n = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    off_t size = st.st_size;
    if (st.st_size == known_size) {
        memcpy(prev, known_hash, sizeof prev); /* nobody appended since our last line */
    } else if (last_line_hash(st.st_size, prev, &ends_nl) != 0) {
        snprintf(err, errlen, "%s: cannot read its last line", path);
        goto out;
    }
    for (const char *r = recs; r < end; n++) {
        const char *rec_path, *text;
        size_t text_len;
        r = get_record(r, &rec_path, &text, &text_len);
        /* body = prefix,"prev":"<prev>"   line = body,"hash":"<sha256(body)>"}\n */
        if (!fr__bytebuf_reserve(&out, text_len + 160)) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        /* A torn last line (no newline) stays a line of its own; verification flags it. */
        if (n == 0 && !ends_nl)
            out.data[out.len++] = '\n';
        char *body = out.data + out.len;
        memcpy(body, text, text_len);
        size_t body_len = text_len;
        body_len += (size_t)sprintf(body + body_len, ",\"prev\":\"%s\"", prev);
        fr__sha256_hex(body, body_len, hash);
        size_t line_len = body_len + (size_t)sprintf(body + body_len, ",\"hash\":\"%s\"}", hash);
        fr__sha256_hex(body, line_len, prev); /* the next line's prev */
        body[line_len] = '\n';
        out.len += line_len + 1;
        if ((out.len >= WRITE_CHUNK || r == end) && write_out(path, &size, err, errlen) != 0)
            goto out;
    }
    memcpy(known_hash, prev, sizeof known_hash);
    known_size = size;
    rc = 0;
out:
    flock(fd, LOCK_UN);
    return rc;
}

/* The writer thread's share (file_mu held): the queued records, a group per path.  Returns
 * how many lines were written. */
static size_t write_queued(const fr_bytebuf *batch)
{
    size_t written = 0;
    const char *r = batch->data, *end = batch->data + batch->len;
    while (r < end) {
        const char *path, *text, *group_end = r;
        size_t text_len, lines = 0;
        get_record(r, &path, &text, &text_len);
        while (group_end < end) {
            const char *next_path;
            const char *next = get_record(group_end, &next_path, &text, &text_len);
            if (strcmp(next_path, path) != 0)
                break;
            group_end = next;
            lines++;
        }
        char err[512];
        if (append_lines(path, r, group_end, err, sizeof err) != 0) {
            fprintf(stderr, "fluxroute: audit log: %s\n", err);
            fr__metric_count(FR_M_AUDIT_WRITE_ERRORS, NULL, 1);
        } else {
            written += lines;
        }
        r = group_end;
    }
    return written;
}

int fr__audit_append(const char *path, const fr_audit_event *ev, char *err, size_t errlen)
{
    fr__audit_init();
    const char *text;
    size_t text_len;
    json_object *o = line_prefix(ev, &text, &text_len);
    int rc = -1;
    if (!text) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&mu);
    /* Once the log has shut down (or while it does) there is no writer to hand a line to:
     * the line is written here, as in line mode. */
    if (mode != FSYNC_LINE && !flusher_stop)
        start_flusher(); /* falls back to line mode when it cannot */
    if (mode != FSYNC_LINE && flusher_started) {
        /* The writer thread appends it with whatever else is queued. */
        size_t rec_len = sizeof(queued_hdr) + strlen(path) + 1 + text_len;
        while (queue.len && queue.len + rec_len >= QUEUE_CAP && !flusher_stop) {
            appenders_waiting++;
            pthread_cond_wait(&space_cv, &mu);
            appenders_waiting--;
        }
        if (!flusher_stop) {
            rc = put_record(&queue, path, text, text_len);
            if (rc == 0 && writer_waiting)
                pthread_cond_signal(&flush_cv);
            pthread_mutex_unlock(&mu);
            if (rc != 0)
                snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    pthread_mutex_unlock(&mu);
    fr_bytebuf one = {0};
    if (put_record(&one, path, text, text_len) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&file_mu);
    rc = append_lines(path, one.data, one.data + one.len, err, errlen);
    int sync_fd = rc == 0 ? dup(fd) : -1;
    pthread_mutex_unlock(&file_mu);
    free(one.data);
    if (sync_fd >= 0) {
        if (fsync(sync_fd) != 0 && rc == 0) {
            snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
            rc = -1;
        }
        close(sync_fd);
    }
done:
    json_object_put(o);
    if (rc != 0)
        fr__metric_count(FR_M_AUDIT_WRITE_ERRORS, NULL, 1);
    return rc;
}

int fr__audit_enabled(void)
{
    fr__audit_init();
    return env_path != NULL;
}

int fr__audit_log(const fr_audit_event *ev)
{
    fr__audit_init();
    if (!env_path)
        return 0;
    char err[512];
    if (fr__audit_append(env_path, ev, err, sizeof err) != 0) {
        fprintf(stderr, "fluxroute: audit log: %s\n", err);
        return -1;
    }
    return 0;
}
