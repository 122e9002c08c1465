/* serve's record writer (core/serve/serve_writer.c): tasks run in order on its thread, at
 * most `bound` wait (a push beyond is refused: the caller does the work itself), and what
 * waits when it is freed still runs. */
#include <pthread.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "serve/serve_writer.h"

/* A task that holds the writer's thread until released: the queue behind it fills. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;

static void held(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate_mu);
    gate_entered = 1;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

/* Records its number in the order tasks ran (only the writer's thread appends). */
static int order[64];
static size_t n_order;

static void note(void *arg)
{
    order[n_order++] = (int)(size_t)arg;
}

static void gate_reset(void)
{
    gate_open = gate_entered = 0;
    n_order = 0;
}

static void gate_wait_entered(void)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void test_bound(void)
{
    gate_reset();
    fr_writer *w = fr__writer_new(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(fr__writer_push(w, held, NULL), 0);
    gate_wait_entered(); /* running: it does not count among the waiting */
    for (size_t i = 1; i <= 3; i++)
        CU_ASSERT_EQUAL(fr__writer_push(w, note, (void *)i), 0);
    CU_ASSERT_EQUAL(fr__writer_waiting(w), 3);
    CU_ASSERT_EQUAL(fr__writer_push(w, note, (void *)99), -1); /* full: refused */
    CU_ASSERT_EQUAL(fr__writer_waiting(w), 3);
    gate_release();
    fr__writer_flush(w);
    CU_ASSERT_EQUAL(fr__writer_waiting(w), 0);
    CU_ASSERT_EQUAL_FATAL(n_order, 3);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(order[i], (int)i + 1); /* in order; the refused one never ran */
    /* Room again once it drained. */
    CU_ASSERT_EQUAL(fr__writer_push(w, note, (void *)4), 0);
    fr__writer_flush(w);
    CU_ASSERT_EQUAL(n_order, 4);
    fr__writer_free(w);
}

static void test_free_runs_what_waits(void)
{
    gate_reset();
    fr_writer *w = fr__writer_new(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(fr__writer_push(w, held, NULL), 0);
    gate_wait_entered();
    for (size_t i = 1; i <= 5; i++)
        CU_ASSERT_EQUAL(fr__writer_push(w, note, (void *)i), 0);
    gate_release();
    fr__writer_free(w); /* the five still waiting run before it returns */
    CU_ASSERT_EQUAL(n_order, 5);
}

static void test_no_writer(void)
{
    CU_ASSERT_EQUAL(fr__writer_push(NULL, note, NULL), -1); /* the caller writes */
    CU_ASSERT_EQUAL(fr__writer_waiting(NULL), 0);
    fr__writer_flush(NULL);
    fr__writer_free(NULL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("writer", NULL, NULL);
    CU_add_test(s, "at most `bound` tasks wait; a push beyond is refused", test_bound);
    CU_add_test(s, "freeing it runs what waits", test_free_runs_what_waits);
    CU_add_test(s, "no writer: every push is refused", test_no_writer);
    return fr_test_run_all();
}
