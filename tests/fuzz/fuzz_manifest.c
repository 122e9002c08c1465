/* libFuzzer target for the manifest parser (`make fuzz`): the YAML reader, the schema and
 * the cross-reference and cycle checks.  serve parses manifests sent by clients
 * (manifest_yaml), so every input must either give a manifest or located messages;
 * never a crash, a leak or a hang.  The providers-file form (--providers) gets the same
 * input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/diag.h"
#include "manifest/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    for (int providers_only = 0; providers_only < 2; providers_only++) {
        fr_diags d;
        fr__diags_init(&d, "fuzz.yaml");
        fr_manifest *m =
            providers_only
                ? fr__manifest_parse_providers("fuzz.yaml", (const char *)data, size, &d)
                : fr__manifest_parse("fuzz.yaml", (const char *)data, size, "/nonexistent", &d);
        fr__diags_sort(&d);
        if (sink)
            fr__diags_print(&d, sink);
        fr__manifest_free(m);
        fr__diags_free(&d);
    }
    return 0;
}
