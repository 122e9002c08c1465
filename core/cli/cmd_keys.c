/* `fluxroute keys new`: an API key for serve's keys file.  The key is printed once, with
 * the line that holds its sha256 (never the key) for keys.yaml. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "manifest/manifest.h"
#include "manifest/rbac.h"
#include "base/secure_random.h"
#include "base/sha256.h"

static const char *hex_of(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

int fr__cmd_keys(const cli_command *cmd, int argc, char **argv)
{
    const char *tenant = NULL, *ns_arg = NULL, *role_arg = NULL, *id_arg = NULL, *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"--tenant", 1, &tenant, NULL, NULL},
                            {"--namespace", 1, &ns_arg, NULL, NULL},
                            {"--role", 1, &role_arg, NULL, NULL},
                            {"--id", 1, &id_arg, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1 || strcmp(pos[0], "new") != 0) {
        fr__cli_error(cmd, "expected `keys new` (see fluxroute keys --help)");
        return FR_EXIT_USAGE;
    }
    if (!tenant || !*tenant || strlen(tenant) > 64 || strpbrk(tenant, " \t\r\n{}[],:#\"'")) {
        fr__cli_error(cmd, "--tenant: give the tenant's id (at most 64 characters, no spaces "
                           "or YAML punctuation)");
        return FR_EXIT_USAGE;
    }
    char ns[40];
    const char *ns_in = ns_arg ? ns_arg : tenant;
    if (fr__namespace_normalise(ns_in, ns, sizeof ns) != 0) {
        fr__cli_error(cmd,
                      "%s \"%s\": a namespace is ^[a-z][a-z0-9_-]{1,31}$ after trimming and "
                      "lower-casing%s",
                      ns_arg ? "--namespace" : "the namespace (from --tenant)", ns_in,
                      ns_arg ? "" : "; give --namespace");
        return FR_EXIT_USAGE;
    }
    fr_role role = FR_ROLE_OPERATOR;
    if (role_arg && fr__key_role_parse(role_arg, &role) != 0) {
        fr__cli_error(cmd, "--role %s: expected viewer, operator, admin or metrics", role_arg);
        return FR_EXIT_USAGE;
    }
    unsigned char secret[24], tag[3];
    if (fr__secure_random(secret, sizeof secret) != 0 || fr__secure_random(tag, sizeof tag) != 0) {
        fr__cli_error(cmd, "cannot draw a key: getrandom failed");
        return FR_EXIT_FAILED;
    }
    char key[4 + 2 * sizeof secret + 1], digest[65], id[128], taghex[7];
    snprintf(key, sizeof key, "frk_");
    hex_of(secret, sizeof secret, key + 4);
    fr__sha256_hex(key, strlen(key), digest);
    if (id_arg)
        snprintf(id, sizeof id, "%s", id_arg);
    else
        snprintf(id, sizeof id, "%s-%s-%s", tenant, fr__role_name(role),
                 hex_of(tag, sizeof tag, taghex));
    if (!*id || strpbrk(id, " \t\r\n{}[],:#\"'")) {
        fr__cli_error(cmd, "--id: no spaces or YAML punctuation");
        return FR_EXIT_USAGE;
    }
    /* The key on the first line alone, so that KEY=$(fluxroute keys new ... | head -1)
     * works; the keys file line after it. */
    printf("%s\n  - {id: %s, sha256: %s, tenant: %s, namespace: %s, role: %s}\n", key, id, digest,
           tenant, ns, fr__role_name(role));
    fprintf(stderr, "fluxroute keys: the key (first line) is shown only now; add the second line "
                    "under keys: in serve's keys file and send SIGHUP to serve to load it\n");
    return fflush(stdout) == 0 ? FR_EXIT_OK : FR_EXIT_FAILED;
}
