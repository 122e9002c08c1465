/* Embedding FluxRoute: open a pipeline once, run it, print the report.
 *
 *   cc embed.c $(pkg-config --cflags --libs fluxroute) -o embed
 *   ./embed MANIFEST [INPUT_JSON] [SEED]
 *
 * Plugins are found in FLUXROUTE_PLUGIN_PATH (enabled below), the manifest's
 * plugins.dirs, then the installed plugin directory.  Exit: 0 the run succeeded, 1 it
 * failed, 2 the manifest could not be opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fluxroute/fluxroute.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MANIFEST [INPUT_JSON] [SEED]\n", argv[0]);
        return 2;
    }
    fr_engine_options opts = {.struct_size = sizeof opts, .use_env_plugin_path = 1};
    fr_engine *engine = NULL;
    char *errors = NULL;
    fr_status st = fr_engine_open(argv[1], &opts, &engine, &errors);
    if (st != FR_OK) {
        /* errors holds one "file:line:col: message" per line. */
        fprintf(stderr, "%s: %s\n%s", argv[1], fr_strerror(st), errors ? errors : "");
        fr_free(errors);
        return 2;
    }
    fr_free(errors);

    const char *input = argc > 2 ? argv[2] : NULL; /* NULL: the manifest's input */
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    char *report = NULL;
    st = fr_engine_run(engine, input, seed, &report);
    int rc = 2;
    if (st == FR_OK) {
        /* A run whose steps failed still returns FR_OK: the report says how it went.  The
         * run's own "status" comes before the steps' (use a JSON parser in real code). */
        puts(report);
        const char *status = strstr(report, "\"status\":");
        rc = status && strncmp(status + 9, "\"succeeded\"", 11) == 0 ? 0 : 1;
    } else {
        fprintf(stderr, "run: %s (%s)\n", fr_strerror(st), fr_status_name(st));
    }
    fr_free(report);
    fr_engine_close(engine);
    return rc;
}
