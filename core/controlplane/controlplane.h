/* `fluxroute controlplane`: the control-plane HTTP server (tenants, API keys, usage
 * metering, rate cards, invoices, SLA) over the SQLite store in cp_store.c.  Routes and
 * auth rules are listed at the top of controlplane.c and in the README. */
#ifndef FR_CORE_CONTROLPLANE_H
#define FR_CORE_CONTROLPLANE_H

#include "cli/cli.h"

/* Largest request body accepted (bigger ones get 413). */
#define FR_CP_MAX_BODY (1024 * 1024)

/* The command: `fluxroute controlplane [--db PATH] [--addr ADDR]` serves until SIGINT or
 * SIGTERM; `fluxroute controlplane create-admin-key [--db PATH]` prints a new admin key. */
int fr__cmd_controlplane(const cli_command *cmd, int argc, char **argv);

#endif
