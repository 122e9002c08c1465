/* The invocation log: one JSON line per attempt (and per run and breaker transition),
 * to LOG_PATH (appended) or stderr.
 *
 * Off unless asked for, so the CLI's human output stays readable: lines are written
 * when LOG_PATH is set (threshold LOG_LEVEL, default info) or when LOG_LEVEL is set
 * explicitly (then to stderr unless LOG_PATH is set).  Successful attempts and runs log
 * at info; failed ones, and breaker transitions, at warn.  LOG_LEVEL also sets the
 * threshold of plugins' own messages (core/host/host.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "observe/obs_impl.h"

static int threshold = -1; /* -1: off; else the highest level written */
static int log_fd = -1;
static int warned;

void fr__oblog_init(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *lv = getenv("LOG_LEVEL"), *path = getenv("LOG_PATH");
    int explicit_level = -1;
    for (int i = 0; lv && *lv && i < 4; i++)
        if (strcasecmp(lv, names[i]) == 0)
            explicit_level = i;
    if (lv && *lv && explicit_level < 0)
        fprintf(stderr,
                "fluxroute: LOG_LEVEL=\"%s\" is not error, warn, info or debug; "
                "using info\n",
                lv);
    if (path && *path) {
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0) {
            fprintf(stderr, "fluxroute: LOG_PATH %s: %s; logging to stderr\n", path,
                    strerror(errno));
            log_fd = 2;
        }
        threshold = explicit_level >= 0 ? explicit_level : FR_LOG_INFO;
    } else if (lv && *lv) {
        log_fd = 2;
        threshold = explicit_level >= 0 ? explicit_level : FR_LOG_INFO;
    }
}

int fr__oblog_enabled(int level)
{
    return level <= threshold;
}

void fr__oblog_write(int level, json_object *o)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    fr__obs_timestamp(ts);
    /* ts and level first: rebuild the object in that order. */
    json_object *line = json_object_new_object();
    json_object_object_add(line, "ts", json_object_new_string(ts));
    json_object_object_add(line, "level", json_object_new_string(names[level & 3]));
    json_object_object_foreach(o, k, v) json_object_object_add(line, k, json_object_get(v));
    json_object_put(o);
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *buf = text ? malloc(len + 1) : NULL;
    if (buf) {
        memcpy(buf, text, len);
        buf[len] = '\n';
        /* One write per line: with O_APPEND, concurrent lines never interleave. */
        ssize_t n = write(log_fd, buf, len + 1);
        if (n != (ssize_t)(len + 1)) {
            fr__metric_count(FR_M_LOG_WRITE_ERRORS, NULL, 1);
            if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
                fprintf(stderr, "fluxroute: cannot write the invocation log: %s\n",
                        n < 0 ? strerror(errno) : "short write");
        }
        free(buf);
    }
    json_object_put(line);
}
