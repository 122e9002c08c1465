/* Coordination leases: mutual exclusion between runs, processes and machines, with
 * fencing tokens, a TTL and automatic renewal (README.md, "Coordination leases").
 *
 * A lease on `key` is held by one holder at a time until it is released or its TTL
 * passes without renewal.  Every successful acquire of a key gets a fencing token that
 * is strictly greater than every token handed out for that key before, by any holder,
 * over the backend's whole life (the process for `memory`, the directory for `file`,
 * the Redis database for `redis`).  Renew and release are accepted only from the
 * current holder, checked by holder id and token.
 *
 * The holder's background thread renews every ~ttl/3.  When a renewal is refused
 * (another holder has the key, or it expired and is gone) or the backend stays
 * unreachable until the TTL has passed since the last successful renewal, the lease is
 * lost: the `on_lost` callback is called once, from the renewal thread, so the caller
 * can cancel the protected work.
 *
 * Backends: core/lease/lease_memory.c (process-wide), core/lease/lease_file.c (one file per key
 * under flock), core/lease/lease_redis.c (hiredis, Lua scripts; not in the engine part nor
 * in libfluxroute: the fluxroute command registers it, see fr__lease_backend_register).
 *
 * Thread-safety: backends may be shared by any number of threads.  One fr_lease is used
 * by one thread at a time (its renewal thread is internal).  Messages written to `err`
 * buffers never contain a Redis password. */
#ifndef FR_CORE_LEASE_H
#define FR_CORE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/plugin.h>

/* Longest holder id, including the NUL ("host:pid:random"). */
#define FR_LEASE_HOLDER_MAX 128

typedef enum fr_lease_mode { FR_LEASE_MEMORY = 0, FR_LEASE_FILE, FR_LEASE_REDIS } fr_lease_mode;

/* The COORDINATION_* environment, parsed.  Strings are owned; free with
 * fr__lease_config_free. */
typedef struct fr_lease_config {
    int enabled;        /* COORDINATION_ENABLED truthy (1, true, yes, on) */
    fr_lease_mode mode; /* COORDINATION_MODE, default file */
    char *dir;          /* COORDINATION_DIR, default ${TMPDIR:-/tmp}/fluxroute-coordination */
    int64_t ttl_us;     /* COORDINATION_TTL, Go duration > 0, default 2m */
    char *redis_url;    /* COORDINATION_REDIS_URL (required for redis) */
    char *redis_prefix; /* COORDINATION_REDIS_PREFIX, default "fluxroute" */
} fr_lease_config;

/* Reads the COORDINATION_* variables.  Invalid values are errors, never defaults:
 * returns FR_OK, FR_E_CONFIG with a message naming the variable and value in err, or
 * FR_E_NOMEM.  When COORDINATION_ENABLED is off the other variables are not checked. */
fr_status fr__lease_config_from_env(fr_lease_config *cfg, char *err, size_t err_size);
void fr__lease_config_free(fr_lease_config *cfg);
const char *fr__lease_mode_name(fr_lease_mode mode);

/* What a backend knows about a key's current holder (for messages). */
typedef struct fr_lease_info {
    char holder[FR_LEASE_HOLDER_MAX]; /* "" when the key is free */
    uint64_t token;                   /* the holder's fencing token */
    int64_t expires_in_us;            /* time left; < 0 unknown */
} fr_lease_info;

typedef struct fr_lease_backend fr_lease_backend;

/* Opens the backend `cfg` selects (cfg->enabled is not looked at), through the backend
 * registry below.  memory: the process-wide table; file: creates cfg->dir (0755) if
 * needed; redis (when registered): parses the URL and connects (refusing rediss://).
 * Returns FR_OK with *out (close with fr__lease_backend_close), FR_E_CONFIG (bad URL,
 * unusable dir, or a backend not registered in this program: "lease backend 'redis' is
 * not available in this library; ..."), FR_E_NETWORK (Redis unreachable) or FR_E_NOMEM,
 * with a message in err. */
fr_status fr__lease_backend_open(const fr_lease_config *cfg, fr_lease_backend **out, char *err,
                                 size_t err_size);
void fr__lease_backend_close(fr_lease_backend *b);

/* ---- the backend registry ----
 * memory and file are built in.  redis lives outside the engine part (libfrleaseredis,
 * hiredis), so the installed libfluxroute needs no hiredis: the fluxroute command
 * registers it at start-up (core/cli/main.c), as does a test that uses it. */

/* Fills b (ops, describe, impl) for cfg; on failure frees what it allocated (the caller
 * frees b->describe) and writes a message in err. */
typedef fr_status (*fr_lease_backend_open_fn)(fr_lease_backend *b, const fr_lease_config *cfg,
                                              char *err, size_t err_size);
/* Makes the backend named `name` (fr__lease_mode_name: "redis") open with `open`.  `name`
 * is borrowed for the call.  Registering a name again replaces its function; NULL
 * removes it (memory and file too).  Thread-safe; meant for start-up.  Returns FR_OK, FR_E_INVALID
 * (unknown mode name) or FR_E_NOMEM (no free slot). */
fr_status fr__lease_backend_register(const char *name, fr_lease_backend_open_fn open);
/* "memory", "file /tmp/fluxroute-coordination", "redis redis://:***@127.0.0.1:6379/0".
 * Borrowed; valid until the backend is closed. */
const char *fr__lease_backend_describe(const fr_lease_backend *b);

/* ---- one-shot operations with an explicit holder (the building blocks; tests) ---- */

/* Takes `key` for `holder` for ttl_us if it is free or expired.  FR_OK with *token;
 * FR_E_UNAVAILABLE when someone holds it (*held describes them); FR_E_NETWORK / FR_E_IO
 * when the backend failed (message in err). */
fr_status fr__lease_try_acquire(fr_lease_backend *b, const char *key, const char *holder,
                                int64_t ttl_us, uint64_t *token, fr_lease_info *held, char *err,
                                size_t err_size);
/* Extends the lease to now + ttl_us if (holder, token) still hold it.  FR_OK;
 * FR_E_LEASE_LOST when refused (*held: the current holder, or "" when free); FR_E_NETWORK
 * / FR_E_IO on backend failure. */
fr_status fr__lease_renew_as(fr_lease_backend *b, const char *key, const char *holder,
                             uint64_t token, int64_t ttl_us, fr_lease_info *held, char *err,
                             size_t err_size);
/* Frees the key if (holder, token) hold it.  Same returns as fr__lease_renew_as. */
fr_status fr__lease_release_as(fr_lease_backend *b, const char *key, const char *holder,
                               uint64_t token, fr_lease_info *held, char *err, size_t err_size);

/* ---- held leases with automatic renewal ---- */

typedef struct fr_lease fr_lease;

/* Called once, from the renewal thread, when the lease is lost.  `message` ("lease
 * run:default:hello: renewal refused (held by h:12:ab)") is borrowed for the call. */
typedef void (*fr_lease_lost_fn)(void *ud, const fr_lease *lease, const char *message);
/* Polled while waiting for a held key; returning non-zero stops the wait with that
 * status (e.g. FR_E_CANCELLED). */
typedef fr_status (*fr_lease_stop_fn)(void *ud);

typedef struct fr_lease_acquire_opts {
    int64_t ttl_us;           /* > 0 */
    int64_t wait_us;          /* 0: one try; > 0: keep trying this long; < 0: forever */
    fr_lease_lost_fn on_lost; /* optional */
    void *on_lost_ud;
    fr_lease_stop_fn should_stop; /* optional, polled between tries */
    void *stop_ud;
} fr_lease_acquire_opts;

/* Acquires `key` (copied) with a fresh holder id, waiting up to opts->wait_us while
 * another holder has it, then starts the renewal thread.  Returns FR_OK with *out;
 * FR_E_UNAVAILABLE when still held after the wait (err: "lease K is held by H (fencing
 * token N, expires in D)"); the should_stop status; FR_E_NETWORK / FR_E_IO / FR_E_NOMEM
 * with a message.  A backend failure while waiting is retried until the wait ends. */
fr_status fr__lease_acquire(fr_lease_backend *b, const char *key, const fr_lease_acquire_opts *opts,
                            fr_lease **out, char *err, size_t err_size);
/* Stops renewing and releases the lease (token-checked), then frees it.  Returns FR_OK,
 * FR_E_LEASE_LOST when it had been lost (or the release was refused), or a backend error
 * (the lease then simply expires).  NULL is ignored. */
fr_status fr__lease_release(fr_lease *l, char *err, size_t err_size);

/* Accessors; strings borrowed until release. */
const char *fr__lease_key(const fr_lease *l);
const char *fr__lease_holder(const fr_lease *l);
uint64_t fr__lease_token(const fr_lease *l);
/* 1 once the lease was lost (thread-safe). */
int fr__lease_is_lost(const fr_lease *l);
/* The number of successful automatic renewals so far (thread-safe). */
long fr__lease_renewals(const fr_lease *l);

/* ---- backend internals (lease_*.c) ---- */

/* A backend connection for one thread at a time (Redis); NULL for backends without. */
typedef struct fr_lease_conn fr_lease_conn;

typedef struct fr_lease_ops {
    fr_status (*acquire)(fr_lease_backend *b, fr_lease_conn *c, const char *key, const char *holder,
                         int64_t ttl_us, uint64_t *token, fr_lease_info *held, char *err,
                         size_t err_size);
    fr_status (*renew)(fr_lease_backend *b, fr_lease_conn *c, const char *key, const char *holder,
                       uint64_t token, int64_t ttl_us, fr_lease_info *held, char *err,
                       size_t err_size);
    fr_status (*release)(fr_lease_backend *b, fr_lease_conn *c, const char *key, const char *holder,
                         uint64_t token, fr_lease_info *held, char *err, size_t err_size);
    /* A private connection for a renewal thread (NULL: the backend needs none).  c ==
     * NULL in the calls above means: the backend's shared connection. */
    fr_lease_conn *(*conn_new)(fr_lease_backend *b);
    void (*conn_free)(fr_lease_conn *c);
    void (*destroy)(fr_lease_backend *b);
} fr_lease_ops;

struct fr_lease_backend {
    const fr_lease_ops *ops;
    fr_lease_mode mode;
    char *describe; /* owned */
    void *impl;
};

fr_status fr__lease_memory_open(fr_lease_backend *b, char *err, size_t err_size);
fr_status fr__lease_file_open(fr_lease_backend *b, const char *dir, char *err, size_t err_size);
/* The Redis backend (core/lease/lease_redis.c, libfrleaseredis): cfg->redis_url and
 * cfg->redis_prefix.  An fr_lease_backend_open_fn, for fr__lease_backend_register. */
fr_status fr__lease_redis_open(fr_lease_backend *b, const fr_lease_config *cfg, char *err,
                               size_t err_size);

/* The file name (no directory) of a key's lease file: bytes outside [A-Za-z0-9_.-] and a
 * leading '.' become %XX, so distinct keys get distinct names; long keys are shortened
 * and suffixed with a hash.  Returns 0, or -1 when `size` is too small (>= 256 always
 * suffices). */
int fr__lease_file_name(const char *key, char *out, size_t size);

/* A parsed redis:// URL.  Strings owned; free with fr__redis_url_free. */
typedef struct fr_redis_url {
    char *host;
    int port;       /* default 6379 */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    int db;         /* default 0 */
    char *redacted; /* the URL with the password replaced by *** */
} fr_redis_url;
/* Parses redis://[user:pass@]host[:port][/db].  rediss:// is refused (hiredis 0.14 has no
 * TLS).  Returns FR_OK, or FR_E_CONFIG with a message (never containing the password). */
fr_status fr__redis_url_parse(const char *url, fr_redis_url *out, char *err, size_t err_size);
/* The same, with messages naming `what` (the option or variable the URL came from, such as
 * "--state") instead of COORDINATION_REDIS_URL. */
fr_status fr__redis_url_parse_as(const char *url, const char *what, fr_redis_url *out, char *err,
                                 size_t err_size);
void fr__redis_url_free(fr_redis_url *u);

/* Formats "held by H (fencing token N, expires in D)" for messages. */
void fr__lease_info_format(const fr_lease_info *info, char *out, size_t size);

#endif
