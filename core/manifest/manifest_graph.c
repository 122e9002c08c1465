/* A manifest's steps as a graph for drawing (manifest_graph.h). */
#include <stdlib.h>
#include <string.h>

#include "manifest/manifest_graph.h"

json_object *fr__manifest_graph(const fr_manifest *m)
{
    json_object *g = json_object_new_object(), *nodes = json_object_new_array(),
                *edges = json_object_new_array();
    int *level = m && m->n_steps ? calloc(m->n_steps, sizeof *level) : NULL;
    for (size_t k = 0; level && m->topo && k < m->n_steps; k++) {
        int i = m->topo[k];
        const fr_step_cfg *s = &m->steps[i];
        json_object *deps = json_object_new_array();
        for (size_t d = 0; d < s->n_deps; d++) {
            int j = s->dep_index[d];
            if (level[j] + 1 > level[i])
                level[i] = level[j] + 1;
            json_object_array_add(deps, json_object_new_string(s->depends_on[d]));
            json_object *e = json_object_new_object();
            json_object_object_add(e, "from", json_object_new_string(s->depends_on[d]));
            json_object_object_add(e, "to", json_object_new_string(s->id));
            json_object_array_add(edges, e);
        }
        json_object *n = json_object_new_object();
        json_object_object_add(n, "id", json_object_new_string(s->id));
        json_object_object_add(n, "agent", json_object_new_string(s->agent));
        json_object_object_add(n, "level", json_object_new_int(level[i]));
        json_object_object_add(n, "depends_on", deps);
        json_object_array_add(nodes, n);
    }
    free(level);
    json_object_object_add(g, "nodes", nodes);
    json_object_object_add(g, "edges", edges);
    return g;
}

char *fr__manifest_graph_text(const fr_manifest *m)
{
    json_object *g = fr__manifest_graph(m);
    const char *t = g ? json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN) : NULL;
    char *copy = t ? strdup(t) : NULL;
    json_object_put(g);
    return copy;
}

const char *fr__manifest_graph_memo(fr_manifest *m)
{
    if (!m->graph_text)
        m->graph_text = fr__manifest_graph_text(m);
    return m->graph_text;
}
