/* Unit tests of the audit log's batch mode (core/observe/audit.c): every append that returned 0 is
 * in the file, in one intact hash chain, also when the log shuts down while threads are
 * appending and when lines are appended after it shut down (atexit handlers, request threads
 * that outlive serve's shutdown).  The chain is checked by `fluxroute audit-verify`. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_test.h"
#include "observe/obs_impl.h"
#include "observe/observe.h"

#define THREADS          4
#define LINES_PER_THREAD 3000

static char g_builddir[1024];
static char g_log[1100];
static atomic_int g_written; /* appends that returned 0 */

static int append_one(const char *actor)
{
    fr_audit_event ev = {.actor = actor,
                         .role = "operator",
                         .action = "run",
                         .manifest = "m.yaml",
                         .decision = "allowed",
                         .result = "ok"};
    char err[256];
    int rc = fr__audit_append(g_log, &ev, err, sizeof err);
    if (rc == 0)
        atomic_fetch_add(&g_written, 1);
    return rc;
}

static void *appender(void *arg)
{
    char actor[32];
    snprintf(actor, sizeof actor, "thread-%d", *(int *)arg);
    for (int i = 0; i < LINES_PER_THREAD; i++)
        append_one(actor);
    return NULL;
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0;
    for (int c; (c = getc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static int audit_verify(const char *path)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "'%s/fluxroute' audit-verify '%s' >/dev/null", g_builddir, path);
    return system(cmd);
}

static void test_shutdown_while_appending(void)
{
    unlink(g_log);
    atomic_store(&g_written, 0);
    pthread_t t[THREADS];
    int ids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ids[i] = i;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, appender, &ids[i]), 0);
    }
    /* Shut the log down in the middle of the appends. */
    while (atomic_load(&g_written) < THREADS * LINES_PER_THREAD / 3)
        usleep(100);
    fr__audit_shutdown();
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* And after it: each of these must be written too, not queued for a writer that is gone. */
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(append_one("after-shutdown"), 0);
    fr__audit_shutdown();
    CU_ASSERT_EQUAL(atomic_load(&g_written), THREADS * LINES_PER_THREAD + 20);
    CU_ASSERT_EQUAL(count_lines(g_log), atomic_load(&g_written));
    CU_ASSERT_EQUAL(audit_verify(g_log), 0);
}

int main(void)
{
    const char *b = getenv("FR_BUILDDIR");
    snprintf(g_builddir, sizeof g_builddir, "%s", b ? b : ".");
    char dir[1040];
    snprintf(dir, sizeof dir, "%s/tests/tmp", g_builddir);
    mkdir(dir, 0755); /* may exist */
    snprintf(g_log, sizeof g_log, "%s/audit-%ld.jsonl", dir, (long)getpid());
    setenv("AUDIT_FSYNC", "batch", 1); /* read once, on first use */
    unsetenv("AUDIT_LOG_PATH");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("audit", NULL, NULL);
    if (!s || !CU_add_test(s, "batch mode: shutdown while appending, and appends after it",
                           test_shutdown_while_appending)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = fr_test_run_all();
    unlink(g_log);
    return rc;
}
