/* `fluxroute audit-verify` (check an audit log's hash chain) and `fluxroute
 * audit-export` (audit log to RFC 4180 CSV).  The line format is described in
 * core/observe/audit.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "cli/cli.h"
#include "base/csv.h"
#include "observe/observe.h"
#include "base/sha256.h"

#define ZERO_HASH       "0000000000000000000000000000000000000000000000000000000000000000"
#define HASH_SUFFIX_LEN 75 /* ,"hash":"<64 hex>"} */

/* Reads the next line (without its newline) into *buf.  Returns its length, or -1 at the
 * end of the file. */
static ssize_t next_line(FILE *f, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, f);
    if (n > 0 && (*buf)[n - 1] == '\n')
        (*buf)[--n] = '\0';
    return n;
}

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Checks one line against the previous line's hash.  Returns NULL when it is sound,
 * else the reason (static). */
static const char *check_line(const char *line, size_t len, const char *want_prev, size_t lineno,
                              json_object **parsed)
{
    *parsed = NULL;
    if (len == 0)
        return "empty line";
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    int ok = tok && json_tokener_get_error(tok) == json_tokener_success &&
             json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!ok || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return "not a JSON object (line edited or torn)";
    }
    *parsed = o;
    if (len < HASH_SUFFIX_LEN + 2 ||
        strncmp(line + len - HASH_SUFFIX_LEN, ",\"hash\":\"", 9) != 0 ||
        !is_hex64(line + len - HASH_SUFFIX_LEN + 9) || strcmp(line + len - 2, "\"}") != 0)
        return "no \"hash\" as its last member";
    json_object *pv;
    if (!json_object_object_get_ex(o, "prev", &pv) || !json_object_is_type(pv, json_type_string) ||
        json_object_get_string_len(pv) != 64)
        return "no \"prev\" hash";
    char h[65];
    fr__sha256_hex(line, len - HASH_SUFFIX_LEN, h);
    if (memcmp(h, line + len - HASH_SUFFIX_LEN + 9, 64) != 0)
        return "its hash does not match its content (the line was edited)";
    if (strcmp(json_object_get_string(pv), want_prev) != 0)
        return lineno == 1 ? "the first line's prev is not 64 zeros (lines before it were removed)"
                           : "its prev does not match the sha256 of the line before it (a line "
                             "was removed, inserted or reordered)";
    return NULL;
}

int fr__cmd_audit_verify(const cli_command *cmd, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int json = 0;
    const cli_opt opts[] = {{"--json", 0, NULL, NULL, &json}, {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected an audit log file (see fluxroute audit-verify --help)");
        return FR_EXIT_USAGE;
    }
    FILE *f = fopen(pos[0], "rb");
    if (!f) {
        fr__cli_error(cmd, "%s: %s", pos[0], strerror(errno));
        return FR_EXIT_USAGE;
    }
    char *buf = NULL, prev[65] = ZERO_HASH;
    size_t cap = 0, lineno = 0;
    const char *why = NULL;
    ssize_t n;
    while (!why && (n = next_line(f, &buf, &cap)) >= 0) {
        lineno++;
        json_object *o;
        why = check_line(buf, (size_t)n, prev, lineno, &o);
        json_object_put(o);
        fr__sha256_hex(buf, (size_t)n, prev);
    }
    int read_error = ferror(f);
    fclose(f);
    free(buf);
    if (read_error) {
        fr__cli_error(cmd, "%s: read error", pos[0]);
        return FR_EXIT_USAGE;
    }
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "file", json_object_new_string(pos[0]));
        json_object_object_add(o, "valid", json_object_new_boolean(why == NULL));
        json_object_object_add(o, "lines", json_object_new_int64((int64_t)lineno));
        json_object_object_add(o, "broken_line",
                               why ? json_object_new_int64((int64_t)lineno) : NULL);
        json_object_object_add(o, "reason", why ? json_object_new_string(why) : NULL);
        fr__cli_print_json(o);
    } else if (why) {
        printf("%s:%zu: chain broken: %s\n", pos[0], lineno, why);
    } else {
        printf("%s: chain intact (%zu line%s)\n", pos[0], lineno, lineno == 1 ? "" : "s");
    }
    return why ? FR_EXIT_FAILED : FR_EXIT_OK;
}

/* ---- export ----------------------------------------------------------------------------- */

static const char *const columns[] = {
    "time",   "actor",    "role",   "tenant", "namespace", "action", "manifest",  "manifest_sha256",
    "run_id", "decision", "result", "error",  "prev",      "hash",   "lease_key", "fencing_token",
    NULL};

static const char *field(json_object *o, const char *key)
{
    json_object *r, *v;
    if (json_object_object_get_ex(o, key, &v) ||
        (json_object_object_get_ex(o, "resource", &r) && json_object_object_get_ex(r, key, &v))) {
        if (!v)
            return "";
        return json_object_get_string(v);
    }
    return "";
}

int fr__cmd_audit_export(const cli_command *cmd, int argc, char **argv)
{
    const char *out_arg = NULL, *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"-o", 1, &out_arg, NULL, NULL},
                            {"--output", 1, &out_arg, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "expected an audit log file (see fluxroute audit-export --help)");
        return FR_EXIT_USAGE;
    }
    FILE *in = fopen(pos[0], "rb");
    if (!in) {
        fr__cli_error(cmd, "%s: %s", pos[0], strerror(errno));
        return FR_EXIT_USAGE;
    }
    /* To a temporary file renamed at the end: a failed export leaves no partial CSV. */
    char *tmp = NULL;
    FILE *out = stdout;
    if (out_arg) {
        if (asprintf(&tmp, "%s.tmp.%ld", out_arg, (long)getpid()) < 0 ||
            !(out = fopen(tmp, "wb"))) {
            fr__cli_error(cmd, "%s: %s", out_arg, strerror(errno));
            fclose(in);
            free(tmp);
            return FR_EXIT_USAGE;
        }
    }
    for (int i = 0; columns[i]; i++)
        fprintf(out, "%s%s", i ? "," : "", columns[i]);
    fputs("\r\n", out);
    char *buf = NULL;
    fr_bytebuf row = {0};
    size_t cap = 0, lineno = 0, rows = 0;
    ssize_t n;
    rc = FR_EXIT_OK;
    while ((n = next_line(in, &buf, &cap)) >= 0) {
        lineno++;
        if (n == 0)
            continue;
        json_object *o = json_tokener_parse(buf);
        if (!o || !json_object_is_type(o, json_type_object)) {
            fr__cli_error(cmd, "%s:%zu: not a JSON object", pos[0], lineno);
            json_object_put(o);
            rc = FR_EXIT_USAGE;
            break;
        }
        /* Every cell comes from the log, which records what requests named: neutralised
         * against spreadsheet formulas (csv.h). */
        row.len = 0;
        for (int i = 0; columns[i]; i++) {
            if (i)
                fr__bytebuf_append(&row, ",", 1);
            fr__csv_cell(&row, field(o, columns[i]));
        }
        fr__bytebuf_append(&row, "\r\n", 2);
        json_object_put(o);
        if (row.oom || fwrite(row.data, 1, row.len, out) != row.len) {
            fr__cli_error(cmd, "%s: %s", out_arg ? out_arg : "stdout",
                          row.oom ? "out of memory" : strerror(errno));
            rc = FR_EXIT_FAILED;
            break;
        }
        rows++;
    }
    free(row.data);
    free(buf);
    fclose(in);
    if (out_arg) {
        int werr = fclose(out) != 0;
        if (rc == FR_EXIT_OK && (werr || rename(tmp, out_arg) != 0)) {
            fr__cli_error(cmd, "%s: %s", out_arg, strerror(errno));
            rc = FR_EXIT_USAGE;
        }
        if (rc != FR_EXIT_OK)
            unlink(tmp);
        free(tmp);
        if (rc == FR_EXIT_OK)
            fprintf(stderr, "fluxroute audit-export: %zu rows to %s\n", rows, out_arg);
    } else if (fflush(stdout) != 0) {
        rc = FR_EXIT_FAILED;
    }
    return rc;
}
