/* Roles and actions (README.md, "Environment": REQUEST_ROLE against router.rbac).  Thread-safe. */
#ifndef FR_CORE_RBAC_H
#define FR_CORE_RBAC_H

/* viewer, operator and admin are the roles of tenants (manifests' router.rbac lists,
 * REQUEST_ROLE).  metrics is a role of server keys only (keys file, mTLS clients, control
 * plane keys): it may read serve's /metrics and nothing else. */
typedef enum fr_role {
    FR_ROLE_VIEWER = 0,
    FR_ROLE_OPERATOR = 1,
    FR_ROLE_ADMIN = 2,
    FR_ROLE_METRICS = 3
} fr_role;
typedef enum fr_action {
    FR_ACTION_RUN = 0,
    FR_ACTION_VALIDATE = 1,
    FR_ACTION_REPLAY = 2,
    FR_ACTION_ADMIN = 3,
    FR_ACTION_COUNT_
} fr_action;

/* A set of roles, bit (1 << role). */
typedef unsigned fr_role_set;
#define FR_ROLE_BIT(r) (1u << (r))

/* Parses a tenant role name (viewer, operator, admin): trimmed, case-insensitive.  Returns
 * 0 or -1 for an unknown role ("metrics" included: no manifest may grant it an action). */
int fr__role_parse(const char *text, fr_role *out);
/* The same for the role of a server key or client: also accepts "metrics". */
int fr__key_role_parse(const char *text, fr_role *out);
/* The key roles for messages: "viewer, operator, admin or metrics". */
#define FR_KEY_ROLES_TEXT "viewer, operator, admin or metrics"
const char *fr__role_name(fr_role role);
/* The manifest key of an action's list ("run_roles") and its name ("run_manifest"). */
const char *fr__action_key(fr_action action);
const char *fr__action_name(fr_action action);
/* The default roles allowed for an action when the manifest gives no list. */
fr_role_set fr__action_default_roles(fr_action action);

/* The CLI's role from REQUEST_ROLE: unset or empty gives operator.  Returns 0, or -1 when
 * the value is not a role (the caller reports it, exit 2). */
int fr__role_from_env(fr_role *out);

#endif
