/* Roles and actions: names, defaults, and the CLI's role from REQUEST_ROLE. */
#include "manifest/rbac.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[] = {"viewer", "operator", "admin", "metrics"};
#define N_ROLES (sizeof role_names / sizeof role_names[0])

static const struct {
    const char *key, *name;
    fr_role_set defaults;
} actions[FR_ACTION_COUNT_] = {
    [FR_ACTION_RUN] = {"run_roles", "run_manifest",
                       FR_ROLE_BIT(FR_ROLE_OPERATOR) | FR_ROLE_BIT(FR_ROLE_ADMIN)},
    [FR_ACTION_VALIDATE] = {"validate_roles", "validate_manifest",
                            FR_ROLE_BIT(FR_ROLE_VIEWER) | FR_ROLE_BIT(FR_ROLE_OPERATOR) |
                                FR_ROLE_BIT(FR_ROLE_ADMIN)},
    [FR_ACTION_REPLAY] = {"replay_roles", "replay_trace",
                          FR_ROLE_BIT(FR_ROLE_OPERATOR) | FR_ROLE_BIT(FR_ROLE_ADMIN)},
    [FR_ACTION_ADMIN] = {"admin_roles", "admin", FR_ROLE_BIT(FR_ROLE_ADMIN)},
};

/* Roles [0, n_roles) of role_names. */
static int parse_among(const char *text, unsigned n_roles, fr_role *out)
{
    if (!text)
        return -1;
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    for (unsigned r = 0; r < n_roles; r++) {
        if (strlen(role_names[r]) == len && strncasecmp(role_names[r], text, len) == 0) {
            *out = (fr_role)r;
            return 0;
        }
    }
    return -1;
}

int fr__role_parse(const char *text, fr_role *out)
{
    return parse_among(text, FR_ROLE_ADMIN + 1, out);
}

int fr__key_role_parse(const char *text, fr_role *out)
{
    return parse_among(text, N_ROLES, out);
}

const char *fr__role_name(fr_role role)
{
    return (unsigned)role < N_ROLES ? role_names[role] : "unknown";
}

const char *fr__action_key(fr_action action)
{
    return (unsigned)action < FR_ACTION_COUNT_ ? actions[action].key : "unknown";
}

const char *fr__action_name(fr_action action)
{
    return (unsigned)action < FR_ACTION_COUNT_ ? actions[action].name : "unknown";
}

fr_role_set fr__action_default_roles(fr_action action)
{
    return (unsigned)action < FR_ACTION_COUNT_ ? actions[action].defaults : 0;
}

int fr__role_from_env(fr_role *out)
{
    const char *v = getenv("REQUEST_ROLE");
    if (!v)
        v = "";
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p) {
        *out = FR_ROLE_OPERATOR;
        return 0;
    }
    return fr__role_parse(v, out);
}
