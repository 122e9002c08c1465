/* The calling thread's event loop (core/base/async.h). */
#include <stddef.h>

#include "base/async.h"

static _Thread_local const fr_async *current;

const fr_async *fr__async_current(void)
{
    return current;
}

void fr__async_set_current(const fr_async *a)
{
    current = a;
}
