/* The run journal: writing it as a run goes, and reading it back into a trace
 * (core/trace/journal.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytebuf.h"
#include "base/fileio.h"
#include "base/json_parse.h"
#include "base/secret.h"
#include "base/sha256.h"
#include "base/str.h"
#include "engine/pipeline.h"
#include "host/effects.h"
#include "trace/diff.h"
#include "trace/journal.h"
#include "trace/trace.h"

/* Entries hold whole provider requests and responses: nested deeper than run inputs. */
#define JOURNAL_MAX_DEPTH 256

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

static fr_status fail(journal_file *j, const char *what, char *err, size_t errlen)
{
    if (!j->error[0])
        snprintf(j->error, sizeof j->error, "journal %s: %s: %s", j->path, what,
                 strerror(errno ? errno : EIO));
    snprintf(err, errlen, "%s", j->error);
    return FR_E_UNAVAILABLE;
}

/* One line: the checksum, a space, the entry's JSON (secrets scrubbed), a newline. */
static char *entry_line(json_object *entry, size_t *len)
{
    const char *json = json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    char *scrubbed = json ? fr__secret_scrub(json) : NULL;
    const char *text = scrubbed ? scrubbed : json;
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = malloc(n + 19);
    if (line) {
        char hex[65];
        fr__sha256_hex(text, n, hex);
        memcpy(line, hex, 16);
        line[16] = ' ';
        memcpy(line + 17, text, n);
        line[17 + n] = '\n';
        line[18 + n] = '\0';
        *len = n + 18;
    }
    free(scrubbed);
    return line;
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
    fr_status st = FR_OK;
    pthread_mutex_lock(&j->mu);
    if (j->error[0]) {
        snprintf(err, errlen, "%s", j->error);
        st = FR_E_UNAVAILABLE;
    } else if (j->sync == FR_JOURNAL_SYNC_OFF) {
        fr__bytebuf_append(&j->pending, line, len);
        if (j->pending.oom)
            st = fail(j, "out of memory", err, errlen);
        else if (boundary == FR_JOURNAL_STEP && flush_pending(j) != 0)
            st = fail(j, "write", err, errlen);
    } else if (write_all(j->fd, line, len) != 0) {
        st = fail(j, "write", err, errlen);
    } else if ((j->sync == FR_JOURNAL_SYNC_EFFECT || boundary == FR_JOURNAL_STEP) &&
               fdatasync(j->fd) != 0) {
        st = fail(j, "fdatasync", err, errlen);
    }
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
    return j;
}

static void file_free(journal_file *j)
{
    pthread_mutex_destroy(&j->mu);
    free(j->pending.data);
    free(j->path);
    free(j);
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
    json_object *h = fr__journal_header_new(p, run_id, seed, input_json);
    if (!j || !h) {
        snprintf(err, errlen, "journal %s: out of memory", path);
        json_object_put(h);
        if (j)
            file_free(j);
        close(fd);
        return NULL;
    }
    /* The header is durable whatever the setting: a resume starts from it. */
    fr_status st = file_append(&j->base, h, FR_JOURNAL_STEP, err, errlen);
    json_object_put(h);
    if (st == FR_OK && sync == FR_JOURNAL_SYNC_OFF && flush_pending(j) != 0)
        st = fail(j, "write", err, errlen);
    if (st != FR_OK) {
        close(fd);
        unlink(path);
        file_free(j);
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
    if (flush_pending(j) != 0)
        fail(j, "write", err, errlen);
    if (j->sync != FR_JOURNAL_SYNC_OFF && fdatasync(j->fd) != 0)
        fail(j, "fdatasync", err, errlen);
    if (close(j->fd) != 0)
        fail(j, "close", err, errlen);
    if (j->error[0]) {
        snprintf(err, errlen, "%s", j->error);
        rc = -1;
    }
    file_free(j);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------- */

static int is_hex16(const char *s)
{
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static const char *str_member(json_object *o, const char *key)
{
    return fr__trace_member_string(o, key);
}

/* The step object of `id` in trace.steps, added (status "running") when new. */
static json_object *step_of(json_object *steps, const char *id)
{
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *s = json_object_array_get_idx(steps, i);
        const char *sid = str_member(s, "step");
        if (sid && strcmp(sid, id) == 0)
            return s;
    }
    json_object *s = json_object_new_object();
    json_object_object_add(s, "step", json_object_new_string(id));
    json_object_object_add(s, "status", json_object_new_string("running"));
    json_object_object_add(s, "attempts", json_object_new_array());
    json_object_array_add(steps, s);
    return s;
}

/* Applies one entry (not the header) to the rebuilt trace.  Returns NULL, or why not. */
static const char *apply(fr_journal_doc *d, json_object *e)
{
    const char *t = str_member(e, "t"), *step = str_member(e, "step");
    json_object *steps, *v;
    json_object_object_get_ex(d->trace, "steps", &steps);
    if (!t)
        return "no entry type \"t\"";
    if (strcmp(t, "resume") == 0) {
        d->executions++;
        return NULL;
    }
    if (strcmp(t, "end") == 0) {
        d->ended = 1;
        return NULL;
    }
    if (strcmp(t, "transition") == 0) {
        json_object *tr;
        if (!json_object_object_get_ex(d->trace, "breaker_transitions", &tr)) {
            tr = json_object_new_array();
            json_object_object_add(d->trace, "breaker_transitions", tr);
        }
        json_object *c = NULL;
        json_object_deep_copy(e, &c, NULL);
        if (c)
            json_object_object_del(c, "t");
        json_object_array_add(tr, c);
        return NULL;
    }
    if (!step)
        return "no step id";
    if (strcmp(t, "step") == 0) {
        json_object *s = step_of(steps, step);
        json_object_object_foreach(e, key, val)
        {
            if (strcmp(key, "t") != 0 && strcmp(key, "step") != 0)
                json_object_object_add(s, key, val ? json_object_get(val) : NULL);
        }
        const char *st = str_member(s, "status");
        if (!st || (strcmp(st, "succeeded") != 0 && strcmp(st, "failed") != 0))
            return "a step outcome must be succeeded or failed";
        return NULL;
    }
    if (!json_object_object_get_ex(e, "index", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return "no attempt index";
    size_t index = (size_t)json_object_get_int64(v);
    json_object *s = step_of(steps, step), *atts;
    json_object_object_get_ex(s, "attempts", &atts);
    size_t n = json_object_array_length(atts);
    if (strcmp(t, "attempt") == 0) {
        if (index < n)
            return NULL; /* journaled again by a resume */
        if (index > n)
            return "attempt index skips attempts";
        const char *agent = str_member(e, "agent");
        json_object *at;
        if (!agent || !json_object_object_get_ex(e, "attempt", &at))
            return "an attempt needs its agent and number";
        json_object *a = json_object_new_object();
        json_object_object_add(a, "attempt", json_object_get(at));
        json_object_object_add(a, "agent", json_object_new_string(agent));
        json_object_object_add(a, "status", json_object_new_string("running"));
        json_object_object_add(a, "backoff_us",
                               json_object_object_get_ex(e, "backoff_us", &v)
                                   ? json_object_get(v)
                                   : json_object_new_int(0));
        json_object_object_add(a, "duration_us", json_object_new_int(0));
        json_object_object_add(a, "effects", json_object_new_array());
        json_object_object_add(a, "in_flight", json_object_new_boolean(1));
        json_object_array_add(atts, a);
        return NULL;
    }
    if (index >= n)
        return "names an attempt that was not started";
    json_object *a = json_object_array_get_idx(atts, index), *eff;
    if (strcmp(t, "effect") == 0) {
        json_object *x;
        if (!json_object_object_get_ex(e, "effect", &x) || !str_member(x, "kind"))
            return "an effect needs its kind";
        json_object_object_get_ex(a, "effects", &eff);
        json_object_array_add(eff, json_object_get(x));
        return NULL;
    }
    if (strcmp(t, "attempt_end") == 0) {
        json_object *sv;
        if (!json_object_object_get_ex(e, "status", &sv))
            return "an attempt end needs its status";
        fr_status st = fr__status_from_json(sv);
        if (st == FR_E_INVALID && strcmp(json_object_get_string(sv), "INVALID") != 0)
            return "unknown status";
        json_object_object_add(a, "status",
                               json_object_new_string(st == FR_OK ? "succeeded" : "failed"));
        json_object_object_add(
            a, "class",
            st == FR_OK ? NULL : json_object_new_string(fr_class_name(fr_status_class(st))));
        const char *msg = str_member(e, "message"), *note = str_member(e, "note");
        json_object_object_add(a, "message", msg ? json_object_new_string(msg) : NULL);
        json_object_object_add(a, "duration_us",
                               json_object_object_get_ex(e, "duration_us", &v)
                                   ? json_object_get(v)
                                   : json_object_new_int(0));
        if (note) {
            json_object *notes = json_object_new_array();
            json_object_array_add(notes, json_object_new_string(note));
            json_object_object_add(a, "notes", notes);
        }
        json_object_object_del(a, "in_flight");
        return NULL;
    }
    return "unknown entry type";
}

/* The header's checks: format, version and the fields a resume needs. */
static const char *check_header(json_object *h)
{
    const char *t = str_member(h, "t"), *f = str_member(h, "format");
    json_object *v;
    if (!t || strcmp(t, "header") != 0 || !f || strcmp(f, FR_JOURNAL_FORMAT) != 0)
        return "not a FluxRoute journal (the first entry is not its header)";
    if (!json_object_object_get_ex(h, "version", &v) ||
        json_object_get_int(v) != FR_JOURNAL_VERSION)
        return "unsupported journal version";
    static const char *const need[] = {"run_id", "manifest_name", "manifest_sha256", "manifest",
                                       NULL};
    for (int i = 0; need[i]; i++)
        if (!str_member(h, need[i]))
            return "the header lacks run_id, manifest_name, manifest_sha256 or manifest";
    if (!json_object_object_get_ex(h, "seed", &v) || !json_object_is_type(v, json_type_int))
        return "the header lacks its seed";
    if (!json_object_object_get_ex(h, "plugins", &v) || !json_object_is_type(v, json_type_array))
        return "the header lacks its plugins";
    return NULL;
}

static json_object *trace_from_header(json_object *h)
{
    json_object *t = json_object_new_object(), *v;
    json_object_object_add(t, "format", json_object_new_string(FR_TRACE_FORMAT));
    json_object_object_add(t, "version", json_object_new_int(FR_TRACE_VERSION));
    static const char *const copy[] = {"run_id",    "manifest_name", "manifest_sha256", "plugins",
                                       "providers", "seed",          "input",           NULL};
    for (int i = 0; copy[i]; i++)
        if (json_object_object_get_ex(h, copy[i], &v))
            json_object_object_add(t, copy[i], v ? json_object_get(v) : NULL);
    json_object_object_add(t, "steps", json_object_new_array());
    json_object_object_get_ex(h, "manifest", &v);
    json_object_object_add(t, "manifest", json_object_get(v));
    return t;
}

int fr__journal_parse(const char *text, size_t len, fr_journal_doc *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->executions = 1;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) {
            out->truncated = 1; /* the last entry was being written */
            break;
        }
        size_t line_len = (size_t)(nl - (text + pos)), n = out->n_entries + 1;
        const char *line = text + pos, *why = NULL;
        char hex[65];
        json_object *e = NULL;
        size_t at;
        if (line_len < 18 || !is_hex16(line) || line[16] != ' ')
            why = "not a journal entry (checksum, space, JSON)";
        else if (fr__sha256_hex(line + 17, line_len - 17, hex), memcmp(hex, line, 16) != 0)
            why = "checksum mismatch: the entry was altered or corrupted";
        else if (fr__json_parse_whole(line + 17, line_len - 17, JOURNAL_MAX_DEPTH, &e, &at, &why) !=
                     0 ||
                 !json_object_is_type(e, json_type_object))
            why = why ? why : "not a JSON object";
        else if (n == 1)
            why = check_header(e);
        else
            why = apply(out, e);
        if (why) {
            snprintf(err, errlen, "entry %zu (byte %zu) is corrupted: %s", n, pos, why);
            json_object_put(e);
            fr__journal_doc_free(out);
            return -1;
        }
        if (n == 1) {
            out->header = e;
            out->trace = trace_from_header(e);
        } else {
            json_object_put(e);
        }
        out->n_entries = n;
        pos += line_len + 1;
        out->valid_len = pos;
    }
    if (!out->header) {
        snprintf(err, errlen, "%s",
                 len ? "entry 1 (byte 0) is incomplete: no journal header"
                     : "empty: no journal header");
        fr__journal_doc_free(out);
        return -1;
    }
    return 0;
}

int fr__journal_read(const char *path, fr_journal_doc *out, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = fr__file_read(path, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read journal %s: %s", path, strerror(errno));
        memset(out, 0, sizeof *out);
        return -1;
    }
    char why[800];
    int rc = fr__journal_parse(text, len, out, why, sizeof why);
    if (rc != 0)
        snprintf(err, errlen, "journal %s: %s", path, why);
    free(text);
    return rc;
}

void fr__journal_doc_free(fr_journal_doc *d)
{
    json_object_put(d->header);
    json_object_put(d->trace);
    memset(d, 0, sizeof *d);
}

char *fr__journal_line(json_object *entry, size_t *len)
{
    return entry_line(entry, len);
}
