/* The journal seam: where a running run appends what it does as it happens (each
 * attempt's start, effects and end, each step's outcome, breaker transitions), so that a
 * run whose process dies can be resumed from it (`fluxroute resume`, docs/reference.md
 * "Durable runs").
 *
 * The host and the engine append through the one operation below; the backends (the
 * journal file, core/trace/journal.c) implement it above the engine, so neither the host
 * nor the engine knows the journal's format or where it goes.  A run without a journal
 * holds NULL and pays one branch per effect.
 *
 * Thread-safety: attempts of different steps append concurrently; the implementation
 * serialises appends. */
#ifndef FR_CORE_JOURNAL_SINK_H
#define FR_CORE_JOURNAL_SINK_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include <fluxroute/status.h>

#include "base/cancel.h"

typedef struct fr_journal fr_journal;

/* Where an entry stands for durability (--journal-sync): an effect of an attempt in
 * progress, or a boundary the `step` setting makes durable (a step's outcome). */
enum { FR_JOURNAL_EFFECT = 0, FR_JOURNAL_STEP = 1 };

typedef struct fr_journal_ops {
    /* Appends `entry` (borrowed; serialised before returning) and makes it as durable as
     * the journal's sync setting asks for `boundary`.  Returns FR_OK, or an error with a
     * message in err (the journal cannot be written, or it is fenced: another executor
     * took the run over, FR_E_LEASE_LOST). */
    fr_status (*append)(fr_journal *j, json_object *entry, int boundary, char *err, size_t errlen);
} fr_journal_ops;

/* A journal as the host and the engine see it.  The implementation embeds it first. */
struct fr_journal {
    const fr_journal_ops *ops;
};

/* Appends `entry` (taken: released here) to `j` (NULL: no journal).  A failed append
 * stops the run through `cancel` with the journal's status and message: a run that can
 * no longer be journaled would not be resumable. */
static inline void fr__journal_put(fr_journal *j, fr_cancel *cancel, json_object *entry,
                                   int boundary)
{
    if (!j) {
        json_object_put(entry);
        return;
    }
    char err[512] = "";
    fr_status st = entry ? j->ops->append(j, entry, boundary, err, sizeof err) : FR_E_NOMEM;
    json_object_put(entry);
    if (st != FR_OK && cancel)
        fr__cancel_fire_with(cancel, st, err[0] ? err : "the journal cannot be written");
}

/* The entry {"t": type, "step": step, "index": attempt index} (index < 0: none). */
static inline json_object *fr__journal_entry(const char *type, const char *step, long index)
{
    json_object *e = json_object_new_object();
    if (!e)
        return NULL;
    json_object_object_add(e, "t", json_object_new_string(type));
    if (step)
        json_object_object_add(e, "step", json_object_new_string(step));
    if (index >= 0)
        json_object_object_add(e, "index", json_object_new_int64(index));
    return e;
}

/* The userdata of a value fr__journal_raw_json made, so that a backend writing entries
 * itself knows it (defined in host/effects.c). */
extern const char fr__journal_raw_marker;

/* A json-c serializer writing a string object's text as it is (JSON, not a string). */
static inline int fr__journal_raw_serialize(json_object *o, struct printbuf *pb, int level,
                                            int flags)
{
    (void)level, (void)flags;
    return printbuf_memappend(pb, json_object_get_string(o), json_object_get_string_len(o)) < 0 ? -1
                                                                                                : 0;
}

/* JSON text `text` of `len` bytes as an entry's value, serialised as it is instead of
 * parsed and written again (a step's output: the host checked that it is valid JSON).
 * Newlines, which valid JSON holds only as whitespace, become spaces: an entry is one
 * line.  NULL when out of memory. */
static inline json_object *fr__journal_raw_json(const char *text, size_t len)
{
    json_object *o;
    if (memchr(text, '\n', len)) {
        char *copy = malloc(len ? len : 1);
        if (!copy)
            return NULL;
        for (size_t i = 0; i < len; i++)
            copy[i] = text[i] == '\n' ? ' ' : text[i];
        o = json_object_new_string_len(copy, (int)len);
        free(copy);
    } else {
        o = json_object_new_string_len(text, (int)len);
    }
    if (o)
        json_object_set_serializer(o, fr__journal_raw_serialize, (void *)&fr__journal_raw_marker,
                                   NULL);
    return o;
}

#endif
