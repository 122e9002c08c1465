/* The control plane: an HTTP server (tenants, API keys, usage metering, rate cards,
 * invoices, SLA) over the SQLite store in cp_store.c.  Routes and auth rules are listed
 * at the top of controlplane.c and in the README.  `fluxroute controlplane` (core/cli/
 * cmd_controlplane.c) parses its options and calls these. */
#ifndef FR_CORE_CONTROLPLANE_H
#define FR_CORE_CONTROLPLANE_H

#include <fluxroute/status.h>

/* Largest request body accepted (bigger ones get 413). */
#define FR_CP_MAX_BODY (1024 * 1024)

/* Every pointer is borrowed for the call. */
typedef struct fr_controlplane_options {
    const char *db;        /* the SQLite database, created and migrated on start */
    const char *addr;      /* HOST:PORT, :PORT, [V6]:PORT (fr__http_addr_parse) */
    const char *admin_key; /* an admin key to register (stored hashed), or NULL */
    /* HOST:PORT of a listener without authentication for /metrics, /healthz and /readyz
     * (its second stdout line is `metrics listening on URL`), or NULL for none */
    const char *metrics_addr;
} fr_controlplane_options;

/* Serves until SIGINT or SIGTERM.  TLS comes from the CONTROLPLANE_TLS_* variables.  The
 * first stdout line is `listening on URL`.  Returns FR_OK after the signal, FR_E_INVALID
 * when the configuration is unusable (TLS files, a database of a newer version), FR_E_IO
 * when the database cannot be opened or the address not bound; what is wrong is printed
 * to stderr.  Call once per process: it blocks the signals it waits for. */
fr_status fr__controlplane_main(const fr_controlplane_options *o);

/* Creates an admin key in `db` and prints it on stdout (shown only this once).  Returns
 * FR_OK, FR_E_INVALID (a database of a newer version) or FR_E_IO, saying why on stderr. */
fr_status fr__controlplane_create_admin_key(const char *db);

#endif
