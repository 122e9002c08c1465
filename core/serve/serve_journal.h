/* Durable queued runs (serve/worker --state redis --journal; docs/reference.md "Durable
 * runs"): each execution of a queued run journals to Redis under the run's fencing token
 * (core/state/journal_redis.h), and an execution that finds the journal of an earlier one
 * (the run was claimed from a consumer that died) resumes from it, as `fluxroute resume`
 * does (core/trace/journal.h): same run id, seed and input, settled steps not run again,
 * the recorded calls of an attempt in flight served from the journal.
 *
 * Not thread-safe: one fr_run_journal belongs to one execution. */
#ifndef FR_CORE_SERVE_JOURNAL_H
#define FR_CORE_SERVE_JOURNAL_H

#include <stdint.h>

#include "serve/serve.h"
#include "trace/journal.h"

typedef struct fr_run_journal {
    fr_journal *journal;  /* NULL: the run is not journaled */
    int resume;           /* the journal of an earlier execution was found */
    struct fr_replay *rp; /* a resume: its replay (set by fr__run_journal_apply) */
    fr_journal_doc doc;   /* a resume: the journal read back */
    uint64_t seed;        /* a new journal: the seed its header names */
    int fenced;           /* an append was refused: another execution holds the run */
} fr_run_journal;

/* Opens the journal of the queued run `run_id` of `who` executed with fencing token
 * `token` (its execution count), for pipeline `p`, with `input` (JSON text, NULL: the
 * manifest's) and `seed` (has_seed 0: drawn here).  Token > 1: a journal an earlier
 * execution wrote is read back and resumed from.  Returns 0 (rj->journal NULL when
 * cfg->journal is off or the state is not Redis), or -1 with `out` filled: Redis cannot
 * be reached, the journal cannot be read back (its entry named), or it diverges from `p`
 * (another manifest or plugin build: both sha256 named). */
int fr__run_journal_open(const fr_runs_config *cfg, const fr_identity *who, const char *run_id,
                         uint64_t token, const fr_pipeline *p, const char *input, uint64_t seed,
                         int has_seed, fr_run_journal *rj, fr_reply *out);

/* Applies rj to the run's options: the journal, and for a resume the journal's input,
 * seed and replay (ro->input_json borrowed from rj). */
void fr__run_journal_apply(fr_run_journal *rj, fr_run_options *ro);

/* The run is over: its `resumed_from` into res (a resume), its "end" entry (res NULL: the
 * run did not run), then the journal is closed.  A failed close is logged on stderr
 * naming the run; a refused append (another execution took the run over: lease_lost)
 * sets rj->fenced, and the execution must then write nothing more of the run (its
 * record, acknowledgement and usage are the newer execution's). */
void fr__run_journal_end(fr_run_journal *rj, fr_run_result *res);

/* Frees what rj holds (after fr__run_journal_end, or instead of it for a run refused
 * before it started). */
void fr__run_journal_free(fr_run_journal *rj);

#endif
