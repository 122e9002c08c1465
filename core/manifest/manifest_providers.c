/* Replacing a manifest's providers with definitions from elsewhere: the server's
 * providers file in `serve`, the providers a trace recorded in `replay`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/manifest.h"

int fr__manifest_use_providers(fr_manifest *m, const fr_manifest *from, int require_all, char *err,
                               size_t errlen)
{
    for (size_t i = 0; i < m->n_providers; i++) {
        fr_provider_cfg *pc = &m->providers[i];
        int k = from ? fr__manifest_provider_index(from, pc->id) : -1;
        if (k < 0) {
            if (!require_all)
                continue;
            snprintf(err, errlen, "%s", pc->id);
            return -1;
        }
        const fr_provider_cfg *s = &from->providers[k];
        char *plugin = strdup(s->plugin);
        if (!plugin) {
            snprintf(err, errlen, "out of memory");
            return -2;
        }
        free(pc->plugin);
        pc->plugin = plugin;
        pc->node = s->node;
        pc->plugin_node = s->plugin_node;
        pc->config = s->config; /* borrowed: `from` must outlive m's pipelines */
        pc->breaker = s->breaker;
    }
    return 0;
}
