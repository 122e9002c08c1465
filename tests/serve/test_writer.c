/* serve's record writer (core/serve/serve_writer.c): tasks run in order on its thread, at
 * most `bound` wait (a push beyond is refused: the caller does the work itself), and what
 * waits when it is freed still runs. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

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

/* A task counted under a lock, and a wait for the count with a deadline: nothing here
 * flushes or kicks the writer, so only the writer's own looking (warm) or the push's wake
 * (cold) can run the task. */
static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t count_cv;
static int count;

static void counted(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&count_mu);
    count++;
    pthread_cond_broadcast(&count_cv);
    pthread_mutex_unlock(&count_mu);
}

/* Whether `want` tasks ran within 5 s. */
static int count_reaches(int want)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&count_mu);
    while (count < want && pthread_cond_timedwait(&count_cv, &count_mu, &until) == 0)
        ;
    int reached = count >= want;
    pthread_mutex_unlock(&count_mu);
    return reached;
}

static void test_warm_and_cold(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&count_cv, &attr);
    pthread_condattr_destroy(&attr);
    fr_writer *w = fr__writer_new(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    /* Cold at first: the push wakes it. */
    CU_ASSERT_EQUAL(fr__writer_push(w, counted, NULL), 0);
    CU_ASSERT(count_reaches(1));
    /* Warm now (it just ran one): pushes do not wake it; it finds them by itself. */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(fr__writer_push(w, counted, NULL), 0);
    CU_ASSERT(count_reaches(6));
    /* Cold again after a quiet while (10 rounds of 1 ms; 100 ms is ample on a busy
     * machine, and the next check passes either way, only taking the other path): */
    struct timespec quiet = {0, 100 * 1000 * 1000};
    nanosleep(&quiet, NULL);
    CU_ASSERT_EQUAL(fr__writer_push(w, counted, NULL), 0);
    CU_ASSERT(count_reaches(7));
    /* Half the queue at once wakes it whatever it is. */
    for (int i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(fr__writer_push(w, counted, NULL), 0);
    CU_ASSERT(count_reaches(39));
    fr__writer_free(w);
    pthread_cond_destroy(&count_cv);
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
    CU_add_test(s, "tasks run whether the writer lingers or sleeps", test_warm_and_cold);
    return fr_test_run_all();
}
