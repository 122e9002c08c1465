/* Coroutines (core/base/coro.h).  On x86-64 the switch is a few instructions of our own
 * (the callee-saved registers, the SSE and x87 control words, the stack pointer): no
 * system call, where glibc's swapcontext saves the signal mask with one per switch.
 * Elsewhere, or built with FR_CORO_UCONTEXT (tests/test_coro checks both), it is
 * swapcontext.  Under AddressSanitizer every switch is announced to it, so it knows
 * which stack is live. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/async.h"
#include "base/clock.h"
#include "base/coro.h"

#if !defined(__x86_64__) && !defined(FR_CORO_UCONTEXT)
#define FR_CORO_UCONTEXT 1
#endif
#ifdef FR_CORO_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FR_CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FR_CORO_ASAN 1
#endif
#endif
#ifdef FR_CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* Stacks each thread keeps for reuse (their touched pages stay backed). */
#define KEPT_STACKS 16

struct fr_coro {
    void (*fn)(void *arg);
    void *arg;
    char *map;    /* the mapping: the guard page, then the stack */
    size_t size;  /* of the stack, without the guard page */
    int started;  /* resumed at least once */
    int finished; /* fn has returned */
#ifdef FR_CORO_UCONTEXT
    ucontext_t self, caller;
#else
    void *sp, *caller_sp; /* saved stack pointers */
#endif
#ifdef FR_CORO_ASAN
    void *fake_stack;          /* ASan's fake stack of co while it is switched away */
    const void *caller_bottom; /* the resuming thread's stack, for switching back */
    size_t caller_size;
#endif
};

static _Thread_local fr_coro *current;
static _Thread_local char *kept[KEPT_STACKS];
static _Thread_local size_t n_kept;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

#ifndef FR_CORO_UCONTEXT
/* fr__coro_switch(&save_sp, to_sp): pushes the callee-saved state on this stack, saves
 * the stack pointer in *save_sp, loads to_sp, pops the state saved there and returns
 * into whatever that stack was doing (or, for a new stack, into coro_entry). */
void fr__coro_switch(void **save_sp, void *to_sp);
__asm__(".text\n"
        ".globl fr__coro_switch\n"
        ".hidden fr__coro_switch\n"
        ".type fr__coro_switch, @function\n"
        "fr__coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size fr__coro_switch, .-fr__coro_switch\n"
        ".section .note.GNU-stack,\"\",@progbits\n"
        ".text\n");
#endif

/* ---- AddressSanitizer: which stack is live ---------------------------------------------- */

/* Before the caller switches to co; *caller_fake keeps the caller's fake stack. */
static void asan_enter(fr_coro *co, void **caller_fake)
{
#ifdef FR_CORO_ASAN
    __sanitizer_start_switch_fiber(caller_fake, co->map + page_size(), co->size);
#else
    (void)co, (void)caller_fake;
#endif
}

/* In co, just switched to: notes the caller's stack, to switch back to. */
static void asan_entered(fr_coro *co)
{
#ifdef FR_CORO_ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#else
    (void)co;
#endif
}

/* In co, about to switch to its caller; `finished`: for good (its fake stack goes). */
static void asan_leave(fr_coro *co, int finished)
{
#ifdef FR_CORO_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &co->fake_stack, co->caller_bottom,
                                   co->caller_size);
#else
    (void)co, (void)finished;
#endif
}

/* In the caller, back from co. */
static void asan_left(void *caller_fake)
{
#ifdef FR_CORO_ASAN
    __sanitizer_finish_switch_fiber(caller_fake, NULL, NULL);
#else
    (void)caller_fake;
#endif
}

/* ---- running ---------------------------------------------------------------------------- */

/* Where a coroutine starts, on its own stack; it never returns (it switches back). */
static void coro_entry(void)
{
    fr_coro *co = current;
    asan_entered(co);
    co->fn(co->arg);
    co->finished = 1;
    asan_leave(co, 1);
#ifdef FR_CORO_UCONTEXT
    setcontext(&co->caller);
#else
    void *dead;
    fr__coro_switch(&dead, co->caller_sp);
#endif
    abort(); /* not reached */
}

#ifdef FR_CORO_UCONTEXT
static int prepare(fr_coro *co)
{
    if (getcontext(&co->self) != 0)
        return -1;
    co->self.uc_stack.ss_sp = co->map + page_size();
    co->self.uc_stack.ss_size = co->size;
    co->self.uc_link = NULL;
    makecontext(&co->self, coro_entry, 0);
    return 0;
}
#else
/* A new stack holds what fr__coro_switch pops: the control words (those of this thread
 * now), six registers (zero), and the return address, coro_entry, at a 16-byte boundary:
 * so coro_entry starts with its stack as after a call. */
static int prepare(fr_coro *co)
{
    uintptr_t top = (uintptr_t)(co->map + page_size() + co->size);
    void **sp = (void **)((top & ~(uintptr_t)15) - 16); /* 16-byte aligned, a slot above */
    *sp = (void *)(uintptr_t)coro_entry;
    for (int i = 0; i < 6; i++)
        *--sp = NULL;
    uint32_t words[2] = {0, 0};
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(words[0]), "=m"(words[1]));
    *--sp = NULL;
    memcpy(sp, words, sizeof words);
    co->sp = sp;
    return 0;
}
#endif

fr_coro *fr__coro_new(void (*fn)(void *arg), void *arg)
{
    fr_coro *co = calloc(1, sizeof *co);
    if (!co)
        return NULL;
    size_t guard = page_size();
    co->fn = fn;
    co->arg = arg;
    co->size = FR_CORO_STACK;
    if (n_kept > 0) {
        co->map = kept[--n_kept];
#ifdef FR_CORO_ASAN
        /* The last coroutine on it left coro_entry's frame (at the top) poisoned; every
         * other frame was unpoisoned when its function returned. */
        __asan_unpoison_memory_region(co->map + guard + co->size - 65536, 65536);
#endif
    } else {
        void *m = mmap(NULL, guard + co->size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) {
            free(co);
            return NULL;
        }
        co->map = m;
        if (mprotect(co->map, guard, PROT_NONE) != 0) {
            munmap(co->map, guard + co->size);
            free(co);
            return NULL;
        }
    }
    if (prepare(co) != 0) {
        co->started = 1; /* never ran: free just returns the stack */
        fr__coro_free(co);
        return NULL;
    }
    return co;
}

int fr__coro_resume(fr_coro *co)
{
    if (!co || co->finished || current)
        abort(); /* a finished coroutine, or a resume from inside one: a caller's bug */
    co->started = 1;
    current = co;
    void *caller_fake = NULL;
    asan_enter(co, &caller_fake);
#ifdef FR_CORO_UCONTEXT
    swapcontext(&co->caller, &co->self);
#else
    fr__coro_switch(&co->caller_sp, co->sp);
#endif
    asan_left(caller_fake);
    current = NULL;
    return co->finished;
}

void fr__coro_yield(void)
{
    fr_coro *co = current;
    if (!co)
        abort(); /* not in a coroutine: a caller's bug */
    asan_leave(co, 0);
#ifdef FR_CORO_UCONTEXT
    swapcontext(&co->self, &co->caller);
#else
    fr__coro_switch(&co->sp, co->caller_sp);
#endif
    asan_entered(co);
}

fr_coro *fr__coro_current(void)
{
    return current;
}

void fr__coro_continue(fr_coro *co)
{
    if (fr__coro_resume(co))
        fr__coro_free(co);
}

static void wake(void *co)
{
    fr__coro_continue(co);
}

int fr__coro_sleep_until(int64_t until, const int *cancelled)
{
    const fr_async *loop = current ? fr__async_current() : NULL;
    if (!loop)
        return -1;
    for (int64_t now = fr__mono_us();
         now < until && !(cancelled && __atomic_load_n(cancelled, __ATOMIC_ACQUIRE));
         now = fr__mono_us()) {
        int64_t at = cancelled && until - now > FR_CORO_SLEEP_SLICE_US
                         ? now + FR_CORO_SLEEP_SLICE_US
                         : until;
        if (loop->timer(loop->ctx, at, wake, current) != 0)
            return -1;
        fr__coro_yield();
    }
    return 0;
}

void fr__coro_free(fr_coro *co)
{
    if (!co)
        return;
    if (co->started && !co->finished)
        abort(); /* its stack is still in use */
    if (n_kept < KEPT_STACKS)
        kept[n_kept++] = co->map;
    else
        munmap(co->map, page_size() + co->size);
    free(co);
}
