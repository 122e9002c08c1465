/* The Redis journal backend (docs/reference.md, "Durable runs"): with `serve`/`worker
 * --state redis`, a queued run journals to the stream "<prefix>:{t:TENANT}:journal:RUN_ID"
 * (the tenant's hash slot, as its record and lease), one stream entry per journal entry:
 * {k: the fencing token of the execution that wrote it, e: the entry's line as the journal
 * file holds it ("CHECKSUM JSON\n", core/trace/journal.h)}.  The stream expires with the
 * run records' retention (renewed by every append).
 *
 * Appends are fenced: a Lua script adds them only when neither the run's fencing counter
 * ("{t:T}:run:ID:fence", bumped by fr__run_queue_start) nor the journal's last entry holds
 * a newer token than the appender's; a refused append returns FR_E_LEASE_LOST, which stops
 * the run (fr__journal_put).
 *
 * --journal-sync: EFFECT: one awaited round trip per entry.  STEP and OFF: entries are
 * buffered and written in one awaited round trip at each step's outcome (and the other
 * boundaries: header, resume, end); an attempt's effects in flight at a crash are lost and
 * made again.  What Redis acknowledged survives Redis's own crash as its appendfsync says.
 *
 * Thread-safety: appends are serialised by the journal; reading shares nothing. */
#ifndef FR_CORE_STATE_JOURNAL_REDIS_H
#define FR_CORE_STATE_JOURNAL_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"
#include "trace/journal.h"

/* Reads the journal of run `run_id` of `tenant` on `s` into *doc (fr__journal_doc_free).
 * FR_OK with *found 0 when there is none, or 1 with doc filled; FR_E_INVALID with err
 * "journal KEY: entry N (byte B) is corrupted: why" when it cannot be read back; or
 * FR_E_NETWORK with err naming Redis. */
fr_status fr__journal_redis_read(fr_state *s, const char *tenant, const char *run_id,
                                 fr_journal_doc *doc, int *found, char *err, size_t errlen);

/* A journal appending to the stream of `run_id` under fencing token `token`, expiring
 * `ttl_us` after its last append (0: never).  Writes nothing yet: a new journal's first
 * append is its header (fr__journal_header_new).  Strings are copied.  NULL on OOM. */
fr_journal *fr__journal_redis_open(fr_state *s, const char *tenant, const char *run_id,
                                   uint64_t token, int64_t ttl_us, fr_journal_sync sync);

/* Writes what is buffered and frees the journal.  FR_OK, or the first failure of this or an
 * earlier append with err set: FR_E_LEASE_LOST when another execution took the run over. */
fr_status fr__journal_redis_close(fr_journal *j, char *err, size_t errlen);

#endif
