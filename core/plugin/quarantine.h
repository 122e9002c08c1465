/* Abandoned in-process threads and quarantined plugins.
 *
 * An in-process plugin call that ignores its deadline cannot be stopped: the watchdog
 * abandons its thread (core/engine/sched.c) and the run carries on without it.  This module
 * counts those threads process-wide and, once a cap is set (`serve --max-abandoned`),
 * quarantines every plugin whose hang brings the count to the cap: its in-process calls
 * are refused from then on, until the process restarts, so that a plugin that hangs on
 * every call cannot pile up threads without bound.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef FR_CORE_QUARANTINE_H
#define FR_CORE_QUARANTINE_H

#include <stddef.h>

/* Sets the cap (0: no cap, the default outside serve).  Call before runs start. */
void fr__abandoned_set_cap(size_t cap);
size_t fr__abandoned_cap(void);

/* Abandoned threads still inside a plugin call, process-wide. */
size_t fr__abandoned_count(void);

/* A call of plugin `path` (borrowed) was abandoned while hung: counts its thread and
 * quarantines the plugin when the count reaches the cap. */
void fr__abandoned_note(const char *path);

/* An abandoned call has returned at last: its thread is no longer counted. */
void fr__abandoned_returned(void);

/* 1 when plugin `path` is quarantined; *why (may be NULL) then gets the reason, a
 * string valid until the process exits. */
int fr__plugin_quarantined(const char *path, const char **why);

#endif
