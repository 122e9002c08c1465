/* A small pool of hiredis connections to one Redis, shared by the threads of a process
 * (serve, worker): the shared state of a cluster of replicas (docs/scaling.md).
 *
 * - A connection is borrowed by one thread at a time (hiredis contexts are not thread-safe)
 *   and given back; a borrower waits at most `wait_us` for one to be free.
 * - Connections are made lazily, with AUTH and SELECT from the URL.  A transport failure
 *   drops the connection; while Redis is unreachable the pool backs off exponentially
 *   (20 ms doubling to 2 s) and borrowers fail at once with "unreachable" instead of each
 *   waiting for a connect timeout.
 * - Messages name the URL with its password replaced by ***.
 * - Every round trip (a command, a pipeline of commands, a script) is counted, for the
 *   benchmarks and the metrics.
 *
 * All functions are thread-safe unless said otherwise. */
#ifndef FR_CORE_STATE_REDIS_POOL_H
#define FR_CORE_STATE_REDIS_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <fluxroute/status.h>

typedef struct fr_redis_pool fr_redis_pool;
typedef struct fr_redis_conn fr_redis_conn;

/* Parses `url` (redis://[user:password@]host[:port][/db]; messages name `what`, such as
 * "--state") and makes a pool of at most `size` connections (0: 4).  Connects nothing yet.
 * FR_OK with *out set, or FR_E_CONFIG (bad URL, rediss://) / FR_E_NOMEM with err set. */
fr_status fr__redis_pool_open(const char *url, const char *what, size_t size, fr_redis_pool **out,
                              char *err, size_t err_size);
/* Closes every connection.  No connection may be borrowed. */
void fr__redis_pool_free(fr_redis_pool *p);
/* The URL with its password replaced by *** (owned by the pool). */
const char *fr__redis_pool_url(const fr_redis_pool *p);

/* Borrows a connected connection: connects (AUTH, SELECT) when needed.  NULL with err set
 * when Redis is unreachable, refuses AUTH, or no connection is free within the pool's wait
 * (1 s).  Give it back with fr__redis_pool_put. */
fr_redis_conn *fr__redis_pool_get(fr_redis_pool *p, char *err, size_t err_size);
/* Gives a borrowed connection back (a broken one is closed and remade on demand). */
void fr__redis_pool_put(fr_redis_pool *p, fr_redis_conn *c);

/* One command on a borrowed connection: argv[i] of length lens[i] (lens NULL: strlen).
 * Returns the reply (free with freeReplyObject; an error reply is returned as it is: check
 * r->type == REDIS_REPLY_ERROR), or NULL with err set after a transport failure, which
 * marks the connection broken. */
redisReply *fr__redis_conn_command(fr_redis_conn *c, int argc, const char **argv,
                                   const size_t *lens, char *err, size_t err_size);
/* Sends `n` commands in one round trip (a pipeline) and reads their replies into
 * replies[0..n).  0, or -1 with err set and every reply NULL (transport failure). */
int fr__redis_conn_pipeline(fr_redis_conn *c, size_t n, const int *argcs,
                            const char *const *argvs[], const size_t *const *lens,
                            redisReply **replies, char *err, size_t err_size);

/* A Lua script, run with EVALSHA (loaded on first use, and again after Redis lost it, such
 * as after a restart).  Define one per script as a static with its text:
 *   static fr_redis_script ADMIT = {.lua = "..."}; */
typedef struct fr_redis_script {
    const char *lua;
    char sha1[41]; /* set on first use (under the pool's lock) */
} fr_redis_script;
/* Runs `s` with numkeys keys among argv[0..argc) (keys first).  Returns the reply (error
 * replies as they are) or NULL with err set, as fr__redis_conn_command. */
redisReply *fr__redis_conn_eval(fr_redis_conn *c, fr_redis_script *s, int numkeys, int argc,
                                const char **argv, const size_t *lens, char *err, size_t err_size);

/* One command on a connection borrowed for it and given back: NULL with err set when
 * Redis is unreachable or the reply is an error reply (its text in err). */
redisReply *fr__redis_command(fr_redis_pool *p, int argc, const char **argv, const size_t *lens,
                              char *err, size_t err_size);
/* One script the same way. */
redisReply *fr__redis_eval(fr_redis_pool *p, fr_redis_script *s, int numkeys, int argc,
                           const char **argv, const size_t *lens, char *err, size_t err_size);

/* 1 when the last attempt to reach Redis succeeded (or none was made yet), 0 while it is
 * unreachable. */
int fr__redis_pool_reachable(fr_redis_pool *p);
/* Round trips made so far, and transport failures. */
uint64_t fr__redis_pool_round_trips(const fr_redis_pool *p);
uint64_t fr__redis_pool_failures(const fr_redis_pool *p);

/* Whether what this Redis acknowledges survives its crash: appendonly yes and appendfsync
 * always (docs/scaling.md).  0 when it does; 1 with a warning in `out` when it reports
 * otherwise; -1 with the reason in `out` when it cannot tell (CONFIG refused, unreachable). */
int fr__redis_pool_durability(fr_redis_pool *p, char *out, size_t size);

#endif
