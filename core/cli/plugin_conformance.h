/* The plugin conformance kit behind `fluxroute plugins test PATH.so`: loads one plugin
 * file and checks what the host relies on (descriptor, option table, direct calls the
 * host cannot record, init/fini symmetry, sample calls, cancellation and deadlines,
 * determinism, allocation failures), printing a pass/fail table or JSON. */
#ifndef FR_CORE_PLUGIN_CONFORMANCE_H
#define FR_CORE_PLUGIN_CONFORMANCE_H

#include "cli/cli.h"

/* `fluxroute plugins test PATH.so [--json] [--config YAML]`; argv[0] is "test".
 * `cmd` is the `plugins` command (for its name).  Returns FR_EXIT_OK when every check
 * passed, FR_EXIT_FAILED when one failed (the plugin refused by the loader included),
 * FR_EXIT_USAGE for bad arguments or a missing file.  Runs the risky checks in forked
 * children, so call it while the process is single-threaded. */
int fr__cmd_plugins_test(const cli_command *cmd, int argc, char **argv);

#endif
