/* Coroutines (core/base/coro.c): a coroutine runs up to its yield and goes on from there
 * when resumed, with its locals intact; many are interleaved on one thread; the stack is
 * its own (deep recursion on it, a guard page below it); floating-point state and
 * callee-saved registers survive switches; stacks are reused.  Built twice: against the
 * library (the x86-64 switch there) and with FR_CORO_UCONTEXT defined, including coro.c
 * itself (the swapcontext fallback of other machines). */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#ifdef FR_CORO_UCONTEXT
#include "../../core/base/coro.c"
#else
#include "base/coro.h"
#endif
#include "fr_test.h"

typedef struct counter {
    int steps, yields;
    double acc;
    long long trail[8];
} counter;

/* Yields `yields` times, keeping a running sum and a record in locals across yields. */
static void count(void *arg)
{
    counter *c = arg;
    volatile double acc = 1.0;
    long long local[8];
    for (int i = 0; i < c->yields; i++) {
        local[i % 8] = (long long)i * 1000003;
        acc = acc * 1.5 + sqrt((double)i);
        c->steps++;
        CU_ASSERT_PTR_NOT_NULL(fr__coro_current());
        fr__coro_yield();
    }
    c->acc = acc;
    memcpy(c->trail, local, sizeof local);
}

static void test_yield_resume(void)
{
    counter c = {.yields = 5};
    fr_coro *co = fr__coro_new(count, &c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(co);
    CU_ASSERT_PTR_NULL(fr__coro_current());
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(fr__coro_resume(co), 0); /* yielded */
        CU_ASSERT_EQUAL(c.steps, i + 1);
        CU_ASSERT_PTR_NULL(fr__coro_current());
    }
    CU_ASSERT_EQUAL(fr__coro_resume(co), 1); /* returned */
    double want = 1.0;
    for (int i = 0; i < 5; i++)
        want = want * 1.5 + sqrt((double)i);
    CU_ASSERT_DOUBLE_EQUAL(c.acc, want, 1e-12);
    CU_ASSERT_EQUAL(c.trail[4], 4LL * 1000003);
    fr__coro_free(co);
}

/* 200 coroutines interleaved round-robin, each resumed 50 times, on one thread. */
static void test_interleaved(void)
{
    enum { N = 200, Y = 50 };
    static counter cs[N];
    fr_coro *cos[N];
    for (int i = 0; i < N; i++) {
        cs[i] = (counter){.yields = Y};
        cos[i] = fr__coro_new(count, &cs[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cos[i]);
    }
    int finished = 0;
    for (int round = 0; round <= Y; round++)
        for (int i = 0; i < N; i++)
            finished += fr__coro_resume(cos[i]);
    CU_ASSERT_EQUAL(finished, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(cs[i].steps, Y);
        CU_ASSERT_DOUBLE_EQUAL(cs[i].acc, cs[0].acc, 0);
        fr__coro_free(cos[i]);
    }
}

static int depth_sum(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n == 0)
        return pad[0];
    if (n % 500 == 0)
        fr__coro_yield(); /* yield from deep down the coroutine's own stack */
    return depth_sum(n - 1) + 1 + pad[0] - (char)n;
}

static void deep(void *arg)
{
    *(int *)arg = depth_sum(2000); /* about 1 MB of frames */
}

static void test_deep_stack(void)
{
    int got = -1, yields = 0;
    fr_coro *co = fr__coro_new(deep, &got);
    CU_ASSERT_PTR_NOT_NULL_FATAL(co);
    while (!fr__coro_resume(co))
        yields++;
    CU_ASSERT_EQUAL(got, 2000);
    CU_ASSERT_EQUAL(yields, 4); /* at 2000, 1500, 1000 and 500 */
    fr__coro_free(co);
}

static volatile int no_limit = 1 << 30; /* far past any stack */

static int unbounded(int n)
{
    volatile char pad[4096];
    pad[0] = (char)n;
    if (n > no_limit)
        return 0;
    return unbounded(n + 1) + pad[0];
}

static void overflow(void *arg)
{
    *(int *)arg = unbounded(0);
}

/* Past FR_CORO_STACK the guard page faults: the process dies of SIGSEGV instead of
 * writing over other memory (in a child, so the test goes on). */
static void test_guard_page(void)
{
#ifdef __SANITIZE_ADDRESS__
    printf("(skipped under AddressSanitizer: it reports the overflow itself) ");
    return;
#endif
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int r = 0;
        fr_coro *co = fr__coro_new(overflow, &r);
        if (co)
            fr__coro_resume(co);
        _exit(0);
    }
    int ws = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &ws, 0), pid);
    CU_ASSERT(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV);
}

static void touch(void *arg)
{
    *(void **)arg = __builtin_frame_address(0);
}

/* A freed coroutine's stack is the next one's (the thread keeps a few). */
static void test_stack_reuse(void)
{
    void *first = NULL, *second = NULL;
    fr_coro *a = fr__coro_new(touch, &first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(fr__coro_resume(a), 1);
    fr__coro_free(a);
    fr_coro *b = fr__coro_new(touch, &second);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(fr__coro_resume(b), 1);
    fr__coro_free(b);
    CU_ASSERT_PTR_EQUAL(first, second);
    fr__coro_free(NULL);
    fr_coro *never = fr__coro_new(touch, &first); /* never resumed: freed all the same */
    CU_ASSERT_PTR_NOT_NULL(never);
    fr__coro_free(never);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
#ifdef FR_CORO_UCONTEXT
    CU_pSuite s = CU_add_suite("coro (swapcontext)", NULL, NULL);
#else
    CU_pSuite s = CU_add_suite("coro", NULL, NULL);
#endif
    CU_add_test(s, "yield and resume keep the coroutine's locals", test_yield_resume);
    CU_add_test(s, "200 coroutines interleaved on one thread", test_interleaved);
    CU_add_test(s, "1 MB of frames on the coroutine's stack, yielding deep down", test_deep_stack);
    CU_add_test(s, "an overflow faults on the guard page", test_guard_page);
    CU_add_test(s, "stacks are reused", test_stack_reuse);
    return fr_test_run_all();
}
