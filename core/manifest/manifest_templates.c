/* Prompt templates name other steps' outputs ({{steps.ID.text}}): a step's agent (and its
 * fallbacks) may only name steps that the step depends on, since only those are in its
 * input.  Checked when the manifest is parsed, so `validate` reports a misspelt or missing
 * dependency at its line and column, with the closest step id, instead of the run failing
 * later. */
#include <stdio.h>
#include <string.h>

#include "manifest/manifest.h"

/* Edit distance of a and b (short ids; 0 when equal), capped at 64 characters. */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(b) < 64 ? strlen(b) : 64, prev[65], cur[65];
    for (size_t j = 0; j <= n; j++)
        prev[j] = j;
    for (size_t i = 1; a[i - 1] && i <= 64; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (n + 1) * sizeof *prev);
    }
    return prev[n];
}

static int depends_on(const fr_step_cfg *s, const char *id, size_t len)
{
    for (size_t k = 0; k < s->n_deps; k++)
        if (strlen(s->depends_on[k]) == len && memcmp(s->depends_on[k], id, len) == 0)
            return 1;
    return 0;
}

/* Checks every {{steps.ID...}} of one string scalar against step s's dependencies. */
static void check_text(const fr_manifest *m, const fr_step_cfg *s, const char *agent,
                       const fr_ynode *v, fr_diags *d)
{
    for (const char *p = v->value; (p = strstr(p, "{{")) != NULL;) {
        p += 2;
        while (*p == ' ')
            p++;
        if (strncmp(p, "steps.", 6) != 0)
            continue;
        const char *id = p + 6;
        size_t len = strcspn(id, ". }");
        if (!len || depends_on(s, id, len))
            continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len < 100 ? len : 100), id);
        const char *best = NULL;
        size_t best_d = 3; /* suggest only a near miss */
        for (size_t i = 0; i < m->n_steps; i++) {
            size_t dd = distance(name, m->steps[i].id);
            if (dd < best_d)
                best = m->steps[i].id, best_d = dd;
        }
        int known = fr__manifest_step_index(m, name) >= 0;
        fr__diag_add(d, v->line, v->col,
                     "step \"%s\" (agent \"%s\"): the template names steps.%s, %s%s%s%s", s->id,
                     agent, name,
                     known ? "which is not among its dependencies: add it to depends_on"
                           : "which is not a step",
                     !known && best ? " (did you mean \"" : "", !known && best ? best : "",
                     !known && best ? "\"?)" : "");
    }
}

static void walk(const fr_manifest *m, const fr_step_cfg *s, const char *agent, const fr_ynode *n,
                 fr_diags *d, int depth)
{
    if (!n || depth > 64)
        return;
    if (n->kind == FR_Y_SCALAR) {
        if (n->type == FR_YS_STRING && n->value && strstr(n->value, "{{"))
            check_text(m, s, agent, n, d);
        return;
    }
    for (size_t i = 0; i < n->n; i++)
        walk(m, s, agent, n->values[i], d, depth + 1);
}

void fr__manifest_check_templates(const fr_manifest *m, fr_diags *d)
{
    for (size_t i = 0; i < m->n_steps; i++) {
        const fr_step_cfg *s = &m->steps[i];
        if (s->agent_index < 0)
            continue;
        const fr_agent_cfg *a = &m->agents[s->agent_index];
        walk(m, s, a->id, a->config, d, 0);
        for (size_t k = 0; k < a->n_fallback && a->fallback_index; k++)
            if (a->fallback_index[k] >= 0)
                walk(m, s, m->agents[a->fallback_index[k]].id,
                     m->agents[a->fallback_index[k]].config, d, 0);
    }
}
