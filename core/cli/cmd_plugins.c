/* `fluxroute plugins list|info`: what the loader finds, and each plugin's option table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "manifest/options.h"
#include "cli/plugin_conformance.h"

static const char *kind_name(fr_plugin_kind k)
{
    return k == FR_PLUGIN_AGENT ? "agent" : k == FR_PLUGIN_PROVIDER ? "provider" : "unknown";
}

static fr_loader *make_loader(const cli_list *dirs)
{
    fr_loader *l = fr__loader_new();
    if (!l)
        return NULL;
    for (size_t i = 0; i < dirs->n; i++)
        fr__loader_add_dir(l, dirs->items[i], "--plugin-dir");
    const char *env = getenv("FLUXROUTE_PLUGIN_PATH");
    if (env && *env)
        fr__loader_add_path_list(l, env, "FLUXROUTE_PLUGIN_PATH");
    /* Labelled by directory: users install their own plugins there too (make install). */
    fr__loader_add_dir(l, fr__loader_builtin_dir(), "plugindir");
    return l;
}

static void abi_text(const fr_plugin *d, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u", FR_ABI_VERSION_MAJOR(d->abi_version),
             FR_ABI_VERSION_MINOR(d->abi_version));
}

static int cmd_list(const cli_command *cmd, const cli_list *dirs, int json)
{
    fr_loader *l = make_loader(dirs);
    fr_plugin_listing *items = NULL;
    size_t n = 0;
    if (!l || fr__loader_list(l, &items, &n) != 0) {
        fr__cli_error(cmd, "out of memory");
        fr__loader_free(l);
        return FR_EXIT_FAILED;
    }
    json_object *arr = json ? json_object_new_array() : NULL;
    if (!json)
        printf("%-12s %-9s %-8s %-4s %s\n", "NAME", "KIND", "VERSION", "ABI", "PATH");
    for (size_t i = 0; i < n; i++) {
        const fr_plugin_listing *it = &items[i];
        const fr_plugin *d = it->plugin ? it->plugin->desc : NULL;
        char abi[16] = "-";
        if (d)
            abi_text(d, abi, sizeof abi);
        const char *status = it->refusal ? "refused" : it->shadowed_by ? "shadowed" : "ok";
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(it->name));
            json_object_object_add(o, "status", json_object_new_string(status));
            json_object_object_add(o, "kind",
                                   d ? json_object_new_string(kind_name(d->kind)) : NULL);
            json_object_object_add(o, "version",
                                   d && d->version ? json_object_new_string(d->version) : NULL);
            json_object_object_add(o, "abi", d ? json_object_new_string(abi) : NULL);
            json_object_object_add(o, "path", json_object_new_string(it->path));
            json_object_object_add(o, "origin", json_object_new_string(it->origin));
            json_object_object_add(o, "description",
                                   d && d->description ? json_object_new_string(d->description)
                                                       : NULL);
            json_object_object_add(o, "refusal",
                                   it->refusal ? json_object_new_string(it->refusal) : NULL);
            json_object_object_add(
                o, "shadowed_by", it->shadowed_by ? json_object_new_string(it->shadowed_by) : NULL);
            json_object_array_add(arr, o);
        } else if (it->refusal) {
            /* Refusals of trust already say "refused: ". */
            printf("%-12s %-9s %-8s %-4s %s\n    %s%s\n", it->name, "-", "-", "-", it->path,
                   strncmp(it->refusal, "refused: ", 9) == 0 ? "" : "refused: ", it->refusal);
        } else if (it->shadowed_by) {
            printf("%-12s %-9s %-8s %-4s %s\n    shadowed by %s\n", it->name, "-", "-", "-",
                   it->path, it->shadowed_by);
        } else {
            printf("%-12s %-9s %-8s %-4s %s (%s)\n", it->name, kind_name(d->kind),
                   d->version ? d->version : "-", abi, it->path, it->origin);
        }
    }
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "search_path", json_object_new_string(fr__loader_search_path(l)));
        json_object_object_add(o, "plugins", arr);
        fr__cli_print_json(o);
    } else if (n == 0) {
        printf("(no plugins found in %s)\n", fr__loader_search_path(l));
    }
    fr__plugin_listing_free(items, n);
    fr__loader_free(l);
    return FR_EXIT_OK;
}

static int cmd_info(const cli_command *cmd, const cli_list *dirs, const char *what, int json)
{
    fr_loader *l = make_loader(dirs);
    if (!l) {
        fr__cli_error(cmd, "out of memory");
        return FR_EXIT_FAILED;
    }
    const fr_loaded_plugin *lp = NULL;
    char err[1024];
    size_t wl = strlen(what);
    int rc = strchr(what, '/') || (wl > 3 && strcmp(what + wl - 3, ".so") == 0)
                 ? fr__loader_load_file(l, what, &lp, err, sizeof err)
                 : fr__loader_get(l, what, &lp, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fluxroute plugins info: %s\n", err);
        fr__loader_free(l);
        return FR_EXIT_USAGE;
    }
    const fr_plugin *d = lp->desc;
    char abi[16];
    abi_text(d, abi, sizeof abi);
    json_object *opts = json ? json_object_new_array() : NULL;
    if (!json) {
        printf(
            "name:        %s\nkind:        %s\nversion:     %s\nabi:         %s\npath:        %s\n"
            "sha256:      %s\ndescription: %s\noptions:%s\n",
            d->name, kind_name(d->kind), d->version ? d->version : "-", abi, lp->path, lp->sha256,
            d->description ? d->description : "-",
            d->options && d->options[0].name ? "" : " (none)");
    }
    for (const fr_option *o = d->options; o && o->name; o = FR_OPTION_NEXT(d, o)) {
        const char *def = o->secret && o->default_value ? "(secret)" : o->default_value;
        if (json) {
            json_object *jo = json_object_new_object();
            json_object_object_add(jo, "name", json_object_new_string(o->name));
            json_object_object_add(jo, "type",
                                   json_object_new_string(fr__option_type_name(o->type)));
            json_object_object_add(jo, "default", def ? json_object_new_string(def) : NULL);
            json_object_object_add(jo, "required", json_object_new_boolean(o->required));
            json_object_object_add(jo, "secret", json_object_new_boolean(o->secret));
            json_object_object_add(jo, "doc", o->doc ? json_object_new_string(o->doc) : NULL);
            json_object_array_add(opts, jo);
        } else {
            printf("  %-14s %-8s %s%s%s%s\n      %s\n", o->name, fr__option_type_name(o->type),
                   o->required ? "required" : "default: ",
                   o->required ? ""
                   : def       ? def
                               : "(none)",
                   o->secret ? ", secret" : "", "", o->doc ? o->doc : "");
        }
    }
    if (json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "name", json_object_new_string(d->name));
        json_object_object_add(root, "kind", json_object_new_string(kind_name(d->kind)));
        json_object_object_add(root, "version",
                               d->version ? json_object_new_string(d->version) : NULL);
        json_object_object_add(root, "abi", json_object_new_string(abi));
        json_object_object_add(root, "path", json_object_new_string(lp->path));
        json_object_object_add(root, "sha256", json_object_new_string(lp->sha256));
        json_object_object_add(root, "description",
                               d->description ? json_object_new_string(d->description) : NULL);
        json_object_object_add(root, "options", opts);
        fr__cli_print_json(root);
    }
    fr__loader_free(l);
    return FR_EXIT_OK;
}

int fr__cmd_plugins(const cli_command *cmd, int argc, char **argv)
{
    /* `plugins test` has options of its own: dispatch before parsing. */
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return fr__cmd_plugins_test(cmd, argc - 1, argv + 1);
    const char *pos[2];
    size_t n_pos;
    int json = 0;
    cli_list dirs = {0};
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json},
                            {"--plugin-dir", 1, NULL, &dirs, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 2, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos >= 1 && strcmp(pos[0], "list") == 0 && n_pos == 1)
        return cmd_list(cmd, &dirs, json);
    if (n_pos == 2 && strcmp(pos[0], "info") == 0)
        return cmd_info(cmd, &dirs, pos[1], json);
    fr__cli_error(cmd,
                  "expected `plugins list` or `plugins info NAME` (see fluxroute plugins --help)");
    return FR_EXIT_USAGE;
}
