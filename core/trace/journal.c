/* The run journal: writing it as a run goes (core/trace/journal.h; journal_read.c reads it
 * back into a trace). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytebuf.h"
#include "base/json_write.h"
#include "base/secret.h"
#include "base/sha256.h"
#include "base/str.h"
#include "engine/pipeline.h"
#include "host/effects.h"
#include "trace/journal.h"
#include "trace/trace.h"

int fr__journal_sync_parse(const char *name, fr_journal_sync *out)
{
    static const char *const names[] = {"step", "effect", "off"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (fr_journal_sync)i;
            return 0;
        }
    return -1;
}

/* ---- writing ------------------------------------------------------------------------- */

typedef struct journal_file {
    fr_journal base; /* the seam's view: first */
    pthread_mutex_t mu;
    int fd;
    fr_journal_sync sync;
    fr_bytebuf pending; /* OFF: entries not yet written */
    char *path;
    char error[512]; /* the first failure; appends after it fail too */
    /* STEP: group commit.  Entries are written as they come; a step boundary asks the
     * syncer thread for an fdatasync of what was written so far, and the run goes on
     * while the disk works.  `close` waits for the last one.  Counted in entries. */
    pthread_cond_t cv; /* the syncer waits for work, close for the syncer */
    pthread_t syncer;
    int syncer_up;
    int closing;
    int sync_dir;     /* a new file: its directory is synced once too */
    uint64_t written; /* entries written to the file */
    uint64_t wanted;  /* entries a boundary asked to be on the disk */
    uint64_t synced;  /* entries on the disk */
} journal_file;

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t k = write(fd, data, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        data += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Writes out the OFF buffer (mu held). */
static int flush_pending(journal_file *j)
{
    if (j->pending.len == 0)
        return 0;
    int rc = write_all(j->fd, j->pending.data, j->pending.len);
    j->pending.len = 0;
    return rc;
}

/* Records the first failure (mu held); `err` may be NULL. */
static fr_status fail(journal_file *j, const char *what, char *err, size_t errlen)
{
    if (!j->error[0])
        snprintf(j->error, sizeof j->error, "journal %s: %s: %s", j->path, what,
                 strerror(errno ? errno : EIO));
    if (err)
        snprintf(err, errlen, "%s", j->error);
    return FR_E_UNAVAILABLE;
}

/* fsync of the directory holding `path`: a new file's name survives a machine crash. */
static int sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Makes what was written durable (mu not held).  Returns 0, or -1 with errno. */
static int sync_now(journal_file *j, int dir)
{
    if (fdatasync(j->fd) != 0)
        return -1;
    return dir ? sync_parent_dir(j->path) : 0;
}

/* The group-commit thread of a STEP journal: one fdatasync covers every entry written
 * before it started, however many boundaries asked meanwhile. */
static void *syncer_main(void *arg)
{
    journal_file *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->closing && j->wanted <= j->synced)
            pthread_cond_wait(&j->cv, &j->mu);
        if (j->wanted <= j->synced)
            break; /* closing, nothing asked */
        uint64_t upto = j->written;
        int dir = j->sync_dir;
        j->sync_dir = 0;
        pthread_mutex_unlock(&j->mu);
        int rc = sync_now(j, dir);
        pthread_mutex_lock(&j->mu);
        if (rc != 0)
            fail(j, dir ? "fsync of its directory" : "fdatasync", NULL, 0);
        j->synced = upto;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Asks the syncer for what is written so far (mu held).  Returns 0, or -1 when the
 * thread cannot start (then the caller syncs itself). */
static int ask_sync(journal_file *j)
{
    j->wanted = j->written;
    if (!j->syncer_up) {
        if (pthread_create(&j->syncer, NULL, syncer_main, j) != 0)
            return -1;
        j->syncer_up = 1;
    }
    pthread_cond_signal(&j->cv);
    return 0;
}

/* ---- entry text ----------------------------------------------------------------------- */

/* An entry's JSON is written by core/base/json_write.c rather than by json-c, which
 * allocates a print buffer per entry and formats every integer through snprintf: entries
 * are what a journaled run pays for per effect. */

/* Fills in the line in `b` (17 bytes reserved, then the JSON; secrets scrubbed here):
 * checksum, space, JSON, newline.  Returns the line (b's data) or NULL when out of
 * memory. */
static char *finish_line(fr_bytebuf *b, size_t *len)
{
    char *scrubbed = b->oom ? NULL : fr__secret_scrub(b->data + 17);
    if (scrubbed) {
        b->len = 17;
        fr__bytebuf_append(b, scrubbed, strlen(scrubbed));
        free(scrubbed);
    }
    fr__bytebuf_append(b, "\n", 1);
    if (b->oom) {
        free(b->data);
        return NULL;
    }
    char hex[65];
    fr__sha256_hex(b->data + 17, b->len - 18, hex);
    memcpy(b->data, hex, 16);
    b->data[16] = ' ';
    *len = b->len;
    return b->data;
}

/* One line: the checksum, a space, the entry's JSON (secrets scrubbed), a newline.
 * Caller frees. */
static char *entry_line(json_object *entry, size_t *len)
{
    fr_bytebuf b = {0};
    if (fr__bytebuf_reserve(&b, 512)) {
        b.len = 17;
        fr__json_write_value(&b, entry, &fr__journal_raw_marker);
    }
    return finish_line(&b, len);
}

/* Appends a built line (mu held). */
static fr_status put_line(journal_file *j, const char *line, size_t len, int boundary, char *err,
                          size_t errlen)
{
    if (j->error[0]) {
        snprintf(err, errlen, "%s", j->error);
        return FR_E_UNAVAILABLE;
    }
    if (j->sync == FR_JOURNAL_SYNC_OFF) {
        fr__bytebuf_append(&j->pending, line, len);
        if (j->pending.oom)
            return fail(j, "out of memory", err, errlen);
        if (boundary == FR_JOURNAL_STEP && flush_pending(j) != 0)
            return fail(j, "write", err, errlen);
        return FR_OK;
    }
    if (write_all(j->fd, line, len) != 0)
        return fail(j, "write", err, errlen);
    j->written++;
    if (j->sync == FR_JOURNAL_SYNC_STEP && boundary == FR_JOURNAL_STEP && ask_sync(j) == 0)
        return FR_OK;
    if (j->sync == FR_JOURNAL_SYNC_EFFECT || boundary == FR_JOURNAL_STEP) {
        int dir = j->sync_dir;
        j->sync_dir = 0;
        if (sync_now(j, dir) != 0)
            return fail(j, dir ? "fsync of its directory" : "fdatasync", err, errlen);
        j->synced = j->written;
    }
    return FR_OK;
}

static fr_status file_append(fr_journal *base, json_object *entry, int boundary, char *err,
                             size_t errlen)
{
    journal_file *j = (journal_file *)base;
    size_t len = 0;
    char *line = entry_line(entry, &len);
    if (!line) {
        snprintf(err, errlen, "journal %s: out of memory", j->path);
        return FR_E_NOMEM;
    }
    pthread_mutex_lock(&j->mu);
    fr_status st = put_line(j, line, len, boundary, err, errlen);
    pthread_mutex_unlock(&j->mu);
    free(line);
    return st;
}

static const fr_journal_ops file_ops = {.append = file_append};

static journal_file *file_new(const char *path, int fd, fr_journal_sync sync)
{
    journal_file *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        return NULL;
    }
    j->base.ops = &file_ops;
    j->fd = fd;
    j->sync = sync;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

/* Waits for the syncer to have made every step boundary asked so far durable, and stops
 * it. */
static void syncer_stop(journal_file *j)
{
    pthread_mutex_lock(&j->mu);
    if (j->syncer_up) {
        while (j->synced < j->wanted)
            pthread_cond_wait(&j->cv, &j->mu);
        j->closing = 1;
        pthread_cond_signal(&j->cv);
    }
    int up = j->syncer_up;
    j->syncer_up = 0;
    pthread_mutex_unlock(&j->mu);
    if (up)
        pthread_join(j->syncer, NULL);
}

static void file_free(journal_file *j)
{
    syncer_stop(j);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->pending.data);
    free(j->path);
    free(j);
}

/* ---- the header ---------------------------------------------------------------------- */

/* Appends the header entry's JSON for a run to `b` (b->oom when out of memory): the run's
 * members, then what every header of the pipeline's runs shares (the trace's memo of the
 * scrubbed manifest text, its sha256, the plugins' and providers' identities). */
static void header_json(const fr_pipeline *p, const char *run_id, uint64_t seed,
                        const char *input_json, fr_bytebuf *b)
{
    /* The input is parsed back so that the header holds it as JSON whatever its spacing. */
    json_object *h = fr__journal_header_run(run_id, seed, input_json);
    if (!h) {
        b->oom = 1;
        return;
    }
    fr__json_write_value(b, h, &fr__journal_raw_marker);
    json_object_put(h);
    if (b->oom || b->len < 2)
        return;
    b->len--; /* without its closing brace: the pipeline's members follow */
    fr__bytebuf_append(b, ",", 1);
    fr__trace_put_build(b, p, 0);
    fr__bytebuf_append(b, ",", 1);
    fr__trace_put_build(b, p, 1);
    fr__bytebuf_append(b, "}", 1);
}

fr_journal *fr__journal_create(const char *path, fr_journal_sync sync, const fr_pipeline *p,
                               const char *run_id, uint64_t seed, const char *input_json, char *err,
                               size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create journal %s: %s", path, strerror(errno));
        return NULL;
    }
    journal_file *j = file_new(path, fd, sync);
    /* The header cache is a memo the pipeline carries, not part of what it is. */
    fr_bytebuf b = {0};
    size_t n = 0;
    char *line = NULL;
    if (j && fr__bytebuf_reserve(&b, 4096)) {
        b.len = 17;
        header_json(p, run_id, seed, input_json, &b);
        line = finish_line(&b, &n);
    }
    fr_status st = FR_E_NOMEM;
    if (line) {
        /* The header is a boundary whatever the setting: `step` has it (and the new
         * file's name) on the disk with the first step's outcome at the latest, `effect`
         * before the run starts, `off` never. */
        pthread_mutex_lock(&j->mu);
        j->sync_dir = sync != FR_JOURNAL_SYNC_OFF;
        st = put_line(j, line, n, FR_JOURNAL_STEP, err, errlen);
        pthread_mutex_unlock(&j->mu);
    } else {
        snprintf(err, errlen, "journal %s: out of memory", path);
    }
    free(line);
    if (st != FR_OK) {
        if (j)
            file_free(j);
        else
            snprintf(err, errlen, "journal %s: out of memory", path);
        close(fd);
        unlink(path);
        return NULL;
    }
    return &j->base;
}

fr_journal *fr__journal_reopen(const char *path, size_t valid_len, fr_journal_sync sync, char *err,
                               size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_APPEND);
    if (fd < 0 || ftruncate(fd, (off_t)valid_len) != 0) {
        snprintf(err, errlen, "cannot open journal %s to append: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    journal_file *j = file_new(path, fd, sync);
    if (!j) {
        snprintf(err, errlen, "journal %s: out of memory", path);
        close(fd);
        return NULL;
    }
    return &j->base;
}

int fr__journal_close(fr_journal *base, char *err, size_t errlen)
{
    if (!base)
        return 0;
    journal_file *j = (journal_file *)base;
    int rc = 0;
    /* `step`: the run's end waits for its step boundaries' flushes; entries after the
     * last one (the run's end mark, a failed attempt's effects) are written, not flushed:
     * losing them resumes to the same end without redoing a step. */
    syncer_stop(j);
    pthread_mutex_lock(&j->mu);
    if (flush_pending(j) != 0)
        fail(j, "write", NULL, 0);
    if (j->sync == FR_JOURNAL_SYNC_EFFECT && j->synced < j->written) {
        int dir = j->sync_dir;
        if (sync_now(j, dir) != 0)
            fail(j, dir ? "fsync of its directory" : "fdatasync", NULL, 0);
    }
    if (close(j->fd) != 0)
        fail(j, "close", NULL, 0);
    if (j->error[0]) {
        snprintf(err, errlen, "%s", j->error);
        rc = -1;
    }
    pthread_mutex_unlock(&j->mu);
    file_free(j);
    return rc;
}

char *fr__journal_line(json_object *entry, size_t *len)
{
    return entry_line(entry, len);
}
