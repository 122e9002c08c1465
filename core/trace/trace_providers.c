/* The providers a trace records (version 2): each provider's definition as the run used it
 * (in serve, the server's, which replaced the manifest's), so that `fluxroute replay`
 * rebuilds the same pipeline from the trace alone.  Key values are never in a definition
 * (providers name the environment variable, `api_key_env`), and the trace's secret
 * scrubbing covers secret options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/yaml_tree.h"
#include "engine/pipeline.h"
#include "trace/trace.h"

json_object *fr__trace_providers_build(const fr_manifest *m)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr && i < m->n_providers; i++) {
        const fr_provider_cfg *pc = &m->providers[i];
        json_object *def = NULL;
        if (pc->node && fr__ynode_to_json_ex(pc->node, &def) == 0 && def &&
            json_object_is_type(def, json_type_object)) {
            /* The id as the manifest names it, the plugin as the run used it. */
            json_object_object_add(def, "id", json_object_new_string(pc->id));
            json_object_object_add(def, "plugin", json_object_new_string(pc->plugin));
        } else {
            json_object_put(def);
            def = json_object_new_object();
            json_object_object_add(def, "id", json_object_new_string(pc->id));
            json_object_object_add(def, "plugin", json_object_new_string(pc->plugin));
        }
        json_object_array_add(arr, def);
    }
    return arr;
}

fr_manifest *fr__trace_providers(json_object *trace, char *err, size_t errlen)
{
    json_object *providers;
    err[0] = '\0';
    if (!json_object_object_get_ex(trace, "providers", &providers))
        return NULL; /* a version-1 trace */
    /* JSON is YAML: the providers file parser checks the definitions as serve did. */
    json_object *doc = json_object_new_object();
    if (!doc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object_object_add(doc, "providers", json_object_get(providers));
    const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
    fr_diags d;
    fr__diags_init(&d, "the trace's providers");
    fr_manifest *m =
        text ? fr__manifest_parse_providers("the trace's providers", text, strlen(text), &d) : NULL;
    if (!m || d.n) {
        snprintf(err, errlen, "providers: %s", d.n ? d.items[0].message : "out of memory");
        fr__manifest_free(m);
        m = NULL;
    }
    fr__diags_free(&d);
    json_object_put(doc);
    return m;
}
