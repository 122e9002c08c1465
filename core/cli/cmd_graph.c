/* `fluxroute graph`: the pipeline DAG as Graphviz DOT or Mermaid. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Writes `s` inside a double-quoted DOT or Mermaid label. */
static void put_label(const char *s, int mermaid)
{
    for (; *s; s++) {
        if (*s == '"')
            fputs(mermaid ? "#quot;" : "\\\"", stdout);
        else if (*s == '\\' && !mermaid)
            fputs("\\\\", stdout);
        else if (*s == '\n')
            fputs(mermaid ? " " : "\\n", stdout);
        else
            putchar(*s);
    }
}

static void print_dot(const fr_manifest *m)
{
    printf("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
    for (size_t k = 0; k < m->n_steps; k++) {
        const fr_step_cfg *s = &m->steps[m->topo[k]];
        printf("  \"");
        put_label(s->id, 0);
        printf("\" [label=\"");
        put_label(s->id, 0);
        if (strcmp(s->id, s->agent) != 0) {
            printf("\\n(");
            put_label(s->agent, 0);
            putchar(')');
        }
        printf("\"];\n");
    }
    for (size_t k = 0; k < m->n_steps; k++) {
        const fr_step_cfg *s = &m->steps[m->topo[k]];
        for (size_t d = 0; d < s->n_deps; d++) {
            printf("  \"");
            put_label(s->depends_on[d], 0);
            printf("\" -> \"");
            put_label(s->id, 0);
            printf("\";\n");
        }
    }
    printf("}\n");
}

static void print_mermaid(const fr_manifest *m)
{
    /* Mermaid ids must be simple: use the step's index, label with its name. */
    printf("flowchart LR\n");
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        const fr_step_cfg *s = &m->steps[i];
        printf("  s%d[\"", i);
        put_label(s->id, 1);
        if (strcmp(s->id, s->agent) != 0) {
            printf(" (");
            put_label(s->agent, 1);
            putchar(')');
        }
        printf("\"]\n");
    }
    for (size_t k = 0; k < m->n_steps; k++) {
        int i = m->topo[k];
        const fr_step_cfg *s = &m->steps[i];
        for (size_t d = 0; d < s->n_deps; d++)
            printf("  s%d --> s%d\n", s->dep_index[d], i);
    }
}

int fr__cmd_graph(const cli_command *cmd, int argc, char **argv)
{
    const char *format = "dot", *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"--format", 1, &format, NULL, NULL}, {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected a manifest path (see fluxroute graph --help)");
        return FR_EXIT_USAGE;
    }
    int mermaid = strcmp(format, "mermaid") == 0;
    if (!mermaid && strcmp(format, "dot") != 0) {
        fr__cli_error(cmd, "--format %s: expected dot or mermaid", format);
        return FR_EXIT_USAGE;
    }
    fr_diags diags;
    fr__diags_init(&diags, pos[0]);
    fr_manifest *m = fr__manifest_load(pos[0], &diags);
    if (!m || diags.n > 0) {
        fr__diags_sort(&diags);
        fr__diags_print(&diags, stderr);
        fr__diags_free(&diags);
        fr__manifest_free(m);
        return FR_EXIT_USAGE;
    }
    fr__diags_free(&diags);
    if (mermaid)
        print_mermaid(m);
    else
        print_dot(m);
    fr__manifest_free(m);
    return FR_EXIT_OK;
}
