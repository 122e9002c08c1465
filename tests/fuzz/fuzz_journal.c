/* libFuzzer target for the journal reader (`make fuzz`): every input must either be read
 * into a header and a rebuilt trace or be refused with the entry's position; never crash,
 * leak or hang.  Inputs are journal text (`CHECKSUM JSON` lines): the checksums of the
 * corpus are right, so the fuzzer reaches the entries' checks past them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trace/diff.h"
#include "trace/journal.h"
#include "trace/replay_cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    fr_journal_doc d;
    if (fr__journal_parse((const char *)data, size, &d, err, sizeof err) == 0) {
        /* What a resume does with it before running: look its steps up, and compare the
         * rebuilt trace with itself as debug would. */
        fr_replay *rp = fr__replay_new_resume(d.trace);
        json_object *steps, *out = json_object_new_array();
        if (rp && json_object_object_get_ex(d.trace, "steps", &steps))
            for (size_t i = 0; i < json_object_array_length(steps); i++) {
                const char *id =
                    fr__trace_member_string(json_object_array_get_idx(steps, i), "step");
                if (id)
                    fr__replay_settled_step(rp, id);
            }
        fr__trace_diff(d.trace, d.trace, NULL, 0, 1, out);
        json_object_put(out);
        fr__replay_free(rp);
        fr__journal_doc_free(&d);
    } else if (!strstr(err, "entry ") && !strstr(err, "empty")) {
        __builtin_trap(); /* a refusal names the entry */
    }
    return 0;
}
