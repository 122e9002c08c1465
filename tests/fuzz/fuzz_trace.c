/* libFuzzer target for the trace parser (`make fuzz`).  Every input must either parse
 * into a checked trace or be refused with a message; never crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>

#include "trace/diff.h"
#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    json_object *t = fr__trace_parse((const char *)data, size, err, sizeof err);
    if (t) {
        /* What replay and debug do with a parsed trace: compare it with itself. */
        json_object *out = json_object_new_array();
        fr__trace_diff(t, t, NULL, 0, 1, out);
        json_object_put(out);
    }
    json_object_put(t);
    return 0;
}
