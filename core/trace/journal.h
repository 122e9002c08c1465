/* The run journal (docs/reference.md, "Durable runs"): a run's trace written as the run
 * goes, so that a run whose process dies can be resumed (`fluxroute resume`).
 *
 * A journal file is one entry per line, each `CHECKSUM JSON\n` where CHECKSUM is the first
 * 16 hex digits of the sha256 of JSON: a header {t: "header", format, version, run_id,
 * seed, input, manifest_name, manifest_sha256, manifest, plugins, providers}, then as they
 * happen: "attempt" (a step's attempt starts), "effect" (one effect of an attempt),
 * "attempt_end", "step" (a step's outcome), "transition" (a breaker changed state),
 * "resume" (an execution resumed it) and "end" (the run finished).  Secrets are scrubbed
 * from every entry as from traces.  The reader rebuilds the trace from them.
 *
 * Thread-safety: appends are serialised by the journal; reading has no shared state. */
#ifndef FR_CORE_JOURNAL_H
#define FR_CORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "engine/engine.h"
#include "host/journal_sink.h"

#define FR_JOURNAL_FORMAT  "fluxroute-journal"
#define FR_JOURNAL_VERSION 1
/* Entries hold whole provider requests and responses: nested deeper than run inputs. */
#define FR_JOURNAL_MAX_DEPTH 256

/* When an entry is durable (--journal-sync).
 * STEP (the default): every entry is written to the file as it happens (a process that
 *   dies keeps all of them).  A step's outcome also asks for a flush to the disk
 *   (fdatasync, with the directory's fsync for a new file), made by a syncer thread while
 *   the run goes on (group commit: one flush covers every boundary that came while the
 *   one before ran); the run's end (fr__journal_close) waits for them.  So a machine that
 *   goes down can lose the outcomes of the steps settled during the last flush.
 * EFFECT: every entry is written and flushed to the disk before the run goes on.
 * OFF: entries are kept in memory and written at each step's outcome and at the end,
 *   never flushed to the disk: a process that dies loses its steps in flight. */
typedef enum fr_journal_sync {
    FR_JOURNAL_SYNC_STEP = 0,
    FR_JOURNAL_SYNC_EFFECT,
    FR_JOURNAL_SYNC_OFF
} fr_journal_sync;

/* "effect", "step" or "off".  Returns 0, or -1 for another name. */
int fr__journal_sync_parse(const char *name, fr_journal_sync *out);

/* Creates the journal file `path` (replacing none: an existing file is an error) and
 * writes its header for the run `run_id` of pipeline `p` with `seed` and `input_json`
 * (compact JSON).  Returns the journal (fr__journal_close), or NULL with a message in err
 * naming the path. */
fr_journal *fr__journal_create(const char *path, fr_journal_sync sync, const fr_pipeline *p,
                               const char *run_id, uint64_t seed, const char *input_json, char *err,
                               size_t errlen);

/* Opens an existing journal to append to it after its first `valid_len` bytes (what
 * fr__journal_read accepted: a half-written last entry is cut off). */
fr_journal *fr__journal_reopen(const char *path, size_t valid_len, fr_journal_sync sync, char *err,
                               size_t errlen);

/* Writes what is pending and closes: with EFFECT everything is on the disk, with STEP every
 * step boundary is (it waits for the syncer; entries after the last one, such as the
 * run's end, are written but not flushed), with OFF nothing is flushed.  Returns 0, or -1 with a
 * message in err when this or an earlier append failed. */
int fr__journal_close(fr_journal *j, char *err, size_t errlen);

/* A journal as read back. */
typedef struct fr_journal_doc {
    json_object *header; /* the header entry (owned) */
    /* The trace the entries rebuild (owned; trace format, docs/reference.md): steps in the
     * order they started, each with status "running" until its outcome was journaled; an
     * attempt whose end was not journaled has "in_flight": true. */
    json_object *trace;
    size_t n_entries;    /* complete entries */
    size_t valid_len;    /* bytes up to the end of the last complete entry */
    int truncated;       /* a half-written entry followed (cut off by fr__journal_reopen) */
    unsigned executions; /* executions so far: 1 + the resumes journaled */
    int ended;           /* the run finished */
} fr_journal_doc;

/* Parses journal text.  A half-written last entry (no newline) is left out (truncated);
 * any complete entry that fails its checksum, is not JSON or does not fit is refused:
 * returns -1 with err "entry N (byte B): why" (N from 1).  Returns 0 with *out filled
 * (fr__journal_doc_free). */
int fr__journal_parse(const char *text, size_t len, fr_journal_doc *out, char *err, size_t errlen);

/* Reads and parses a journal file; messages start with the path. */
int fr__journal_read(const char *path, fr_journal_doc *out, char *err, size_t errlen);

void fr__journal_doc_free(fr_journal_doc *d);

/* ---- shared by the backends (the file here, Redis in core/state/journal_redis.h) and the
 * resumers (`fluxroute resume`, a queue consumer): core/trace/journal_resume.c ---- */

/* The header entry of a new journal for the run `run_id` of `p` with `seed` and
 * `input_json` (compact JSON).  Caller frees with json_object_put; NULL on OOM. */
json_object *fr__journal_header_new(const struct fr_pipeline *p, const char *run_id, uint64_t seed,
                                    const char *input_json);

/* The header's two halves, which fr__journal_header_new joins: the run's members {t, format,
 * version, run_id, seed, input} (a new object, NULL on OOM), and the build's
 * {manifest_name, manifest_sha256, plugins, providers, manifest} added to `h` (0, or -1 on
 * OOM), from the pipeline's memo (fr__trace_put_build) that the file journal writes
 * directly. */
json_object *fr__journal_header_run(const char *run_id, uint64_t seed, const char *input_json);
int fr__journal_header_add_build(json_object *h, const struct fr_pipeline *p);

/* One entry as every backend stores it: "CHECKSUM JSON\n" (secrets scrubbed), the text
 * fr__journal_parse reads back.  Caller frees; *len is its length.  NULL on OOM. */
char *fr__journal_line(json_object *entry, size_t *len);

/* What differs between the manifest and plugins a journal's `header` names and those of
 * `p` (loaded now): one line each added to `changes` (a JSON array).  A resume with any
 * is a divergence, unless the caller allows changed builds. */
void fr__journal_compare_builds(json_object *header, const struct fr_pipeline *p,
                                json_object *changes);

/* Fills `ro` to continue the run `doc` records as execution `executions`: its input, seed
 * and run id (borrowed from doc->header), recording on, and a resume replay over
 * doc->trace, which it returns (the caller frees it with fr__replay_free after the run;
 * NULL on OOM). */
struct fr_replay *fr__journal_resume_options(const fr_journal_doc *doc, unsigned executions,
                                             fr_run_options *ro);

/* Appends the "resume" entry of execution `executions` (a boundary: durable as a step). */
void fr__journal_mark_resume(fr_journal *j, unsigned executions);

/* After a run resumed with `rp`: its `resumed_from` into res (a reference). */
void fr__journal_resumed_from(struct fr_replay *rp, fr_run_result *res);

/* Appends the "end" entry of the finished run `res` (not a boundary: written, not flushed;
 * the backend's close makes it durable as its setting says). */
void fr__journal_mark_end(fr_journal *j, const fr_run_result *res);

#endif
