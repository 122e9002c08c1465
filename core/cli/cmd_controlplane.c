/* `fluxroute controlplane`: its options (argv and the CONTROLPLANE_* variables), then the
 * control plane (core/controlplane/controlplane.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "controlplane/controlplane.h"
#include "http/http.h"

int fr__cmd_controlplane(const cli_command *cmd, int argc, char **argv)
{
    const char *db = NULL, *addr = NULL, *maddr = NULL, *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"--db", 1, &db, NULL, NULL},
                            {"--addr", 1, &addr, NULL, NULL},
                            {"--metrics-addr", 1, &maddr, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (!db)
        db = getenv("CONTROLPLANE_DB");
    if (!db || !*db)
        db = "./fluxroute-controlplane.db";
    if (!addr)
        addr = getenv("CONTROLPLANE_ADDR");
    if (!addr || !*addr)
        addr = ":8081";
    if (!maddr)
        maddr = getenv("CONTROLPLANE_METRICS_ADDR");
    if (maddr && !*maddr)
        maddr = NULL;
    fr_http_addr sa;
    const char *why;
    if (maddr && fr__http_addr_parse(maddr, &sa, &why) != 0) {
        fr__cli_error(cmd, "--metrics-addr %s: %s", maddr, why);
        return FR_EXIT_USAGE;
    }
    if (n_pos == 1 && strcmp(pos[0], "create-admin-key") != 0) {
        fr__cli_error(cmd, "unknown subcommand \"%s\" (see fluxroute controlplane --help)", pos[0]);
        return FR_EXIT_USAGE;
    }
    fr_status st;
    if (n_pos == 1) {
        st = fr__controlplane_create_admin_key(db);
    } else {
        fr_controlplane_options o = {.db = db,
                                     .addr = addr,
                                     .admin_key = getenv("CONTROLPLANE_API_KEY"),
                                     .metrics_addr = maddr};
        st = fr__controlplane_main(&o);
    }
    return st == FR_OK ? FR_EXIT_OK : st == FR_E_INVALID ? FR_EXIT_USAGE : FR_EXIT_FAILED;
}
