/* Leases: each backend's semantics (tokens, holders, expiry, renewal, loss), the memory
 * and file backends under concurrent threads, file names for keys, Redis URLs, the
 * COORDINATION_* environment and the plugins' host API entries.  The Redis tests use a
 * real redis-server this program starts on a free loopback port (with a password, so it
 * can only ever talk to its own server) and stops. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "fr_test.h"
#include "host/host.h"
#include "lease/lease.h"

#define MS         1000LL
#define REDIS_PASS "t3st-pw-XyZ"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- a real redis-server on a free loopback port --------------------------------------- */

typedef struct redis_server {
    pid_t pid;
    int port;
    char url[128];
} redis_server;

static redis_server redis_main;
static char tmp_dir[4096];

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* A connection to the test's server, authenticated; NULL when it does not answer. */
static redisContext *redis_admin(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisReply *r = redisCommand(c, "AUTH %s", REDIS_PASS);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Starts redis-server; a port taken meanwhile makes it exit, then another is tried. */
static int redis_start(redis_server *s)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        s->port = free_port();
        if (s->port < 0)
            continue;
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        s->pid = fork();
        if (s->pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--requirepass", REDIS_PASS, "--dir", tmp_dir,
                   (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 300; i++) {
            sleep_ms(10);
            int status;
            if (waitpid(s->pid, &status, WNOHANG) == s->pid)
                break; /* died: port taken, or no redis-server */
            redisContext *c = redis_admin(s->port);
            if (c) {
                redisFree(c);
                snprintf(s->url, sizeof s->url, "redis://:%s@127.0.0.1:%d/3", REDIS_PASS, s->port);
                return 0;
            }
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    return -1;
}

static void redis_stop(redis_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static fr_lease_backend *open_backend(fr_lease_mode mode)
{
    fr_lease_config cfg = {.enabled = 1, .mode = mode, .ttl_us = 1000 * MS};
    cfg.dir = tmp_dir;
    cfg.redis_url = redis_main.url;
    cfg.redis_prefix = "frtest";
    fr_lease_backend *b = NULL;
    char err[512] = "";
    fr_status st = fr__lease_backend_open(&cfg, &b, err, sizeof err);
    if (st != FR_OK)
        fprintf(stderr, "open %s: %s\n", fr__lease_mode_name(mode), err);
    CU_ASSERT_EQUAL_FATAL(st, FR_OK);
    return b;
}

static const fr_lease_mode all_modes[] = {FR_LEASE_MEMORY, FR_LEASE_FILE, FR_LEASE_REDIS};
#define N_MODES (sizeof all_modes / sizeof all_modes[0])

/* ---- semantics shared by every backend ------------------------------------------------- */

static void check_semantics(fr_lease_backend *b)
{
    char key[64], err[512];
    snprintf(key, sizeof key, "sem:%ld", (long)fr__mono_us());
    fr_lease_info held;
    uint64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0, tx = 0;

    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h1", 5000 * MS, &t1, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT(t1 >= 1);
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h2", 5000 * MS, &tx, &held, err, sizeof err),
                    FR_E_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(held.holder, "h1");
    CU_ASSERT_EQUAL(held.token, t1);
    CU_ASSERT(held.expires_in_us > 4000 * MS && held.expires_in_us <= 5000 * MS);

    /* Renew and release only by the holder, with its token. */
    CU_ASSERT_EQUAL(fr__lease_renew_as(b, key, "h2", t1, 5000 * MS, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_STRING_EQUAL(held.holder, "h1");
    CU_ASSERT_EQUAL(fr__lease_renew_as(b, key, "h1", t1 + 1, 5000 * MS, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(fr__lease_renew_as(b, key, "h1", t1, 5000 * MS, &held, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h2", t1, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h1", t1 + 7, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h1", t1, &held, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h1", t1, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_STRING_EQUAL(held.holder, "");
    CU_ASSERT_EQUAL(fr__lease_renew_as(b, key, "h1", t1, 5000 * MS, &held, err, sizeof err),
                    FR_E_LEASE_LOST);

    /* A new holder gets a larger token. */
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h2", 5000 * MS, &t2, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT(t2 > t1);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h2", t2, &held, err, sizeof err), FR_OK);

    /* Expiry: once the TTL passed without renewal, another holder takes over with a
     * larger token and the old holder can neither renew nor release. */
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h3", 60 * MS, &t3, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h4", 60 * MS, &tx, &held, err, sizeof err),
                    FR_E_UNAVAILABLE);
    sleep_ms(130);
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "h4", 5000 * MS, &t4, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT(t4 > t3 && t3 > t2);
    CU_ASSERT_EQUAL(fr__lease_renew_as(b, key, "h3", t3, 5000 * MS, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_STRING_EQUAL(held.holder, "h4");
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h3", t3, &held, err, sizeof err),
                    FR_E_LEASE_LOST);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "h4", t4, &held, err, sizeof err), FR_OK);

    /* Strictly increasing over many cycles. */
    uint64_t last = t4;
    for (int i = 0; i < 50; i++) {
        uint64_t t = 0;
        char h[16];
        snprintf(h, sizeof h, "c%d", i);
        CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, h, 5000 * MS, &t, &held, err, sizeof err),
                        FR_OK);
        CU_ASSERT(t > last);
        last = t;
        CU_ASSERT_EQUAL(fr__lease_release_as(b, key, h, t, &held, err, sizeof err), FR_OK);
    }
}

static void test_semantics(void)
{
    for (size_t i = 0; i < N_MODES; i++) {
        fr_lease_backend *b = open_backend(all_modes[i]);
        check_semantics(b);
        fr__lease_backend_close(b);
    }
}

/* ---- held leases: renewal and loss -------------------------------------------------------- */

typedef struct lost_probe {
    atomic_int calls;
    char message[512];
} lost_probe;

static void on_lost(void *ud, const fr_lease *l, const char *message)
{
    (void)l;
    lost_probe *p = ud;
    snprintf(p->message, sizeof p->message, "%s", message);
    atomic_fetch_add(&p->calls, 1);
}

/* Acquires a fresh key "<what>:<i>:<now>" on b with TTL 150ms, reporting loss to probe. */
static fr_lease *held_lease(fr_lease_backend *b, const char *what, size_t i, lost_probe *probe,
                            char *key, size_t key_size)
{
    fr_lease_acquire_opts o = {.ttl_us = 150 * MS, .on_lost = on_lost, .on_lost_ud = probe};
    fr_lease *l = NULL;
    char err[512];
    snprintf(key, key_size, "%s:%zu:%ld", what, i, (long)fr__mono_us());
    CU_ASSERT_EQUAL_FATAL(fr__lease_acquire(b, key, &o, &l, err, sizeof err), FR_OK);
    return l;
}

static void test_renewal_keeps_lease(void)
{
    for (size_t i = 0; i < N_MODES; i++) {
        fr_lease_backend *b = open_backend(all_modes[i]);
        lost_probe probe = {0};
        char err[512], key[64];
        fr_lease *l = held_lease(b, "renew", i, &probe, key, sizeof key);
        CU_ASSERT(fr__lease_token(l) >= 1);
        sleep_ms(700); /* more than four TTLs */
        CU_ASSERT_FALSE(fr__lease_is_lost(l));
        CU_ASSERT(fr__lease_renewals(l) >= 5);
        uint64_t t = 0;
        fr_lease_info held;
        CU_ASSERT_EQUAL(
            fr__lease_try_acquire(b, key, "other", 150 * MS, &t, &held, err, sizeof err),
            FR_E_UNAVAILABLE);
        CU_ASSERT_STRING_EQUAL(held.holder, fr__lease_holder(l));
        CU_ASSERT_EQUAL(held.token, fr__lease_token(l));
        uint64_t token = fr__lease_token(l);
        CU_ASSERT_EQUAL(fr__lease_release(l, err, sizeof err), FR_OK);
        CU_ASSERT_EQUAL(atomic_load(&probe.calls), 0);
        /* Released: free at once, next token larger. */
        CU_ASSERT_EQUAL(
            fr__lease_try_acquire(b, key, "other", 150 * MS, &t, &held, err, sizeof err), FR_OK);
        CU_ASSERT(t > token);
        fr__lease_release_as(b, key, "other", t, &held, err, sizeof err);
        fr__lease_backend_close(b);
    }
}

/* Someone else ends up holding the key (here: the lease is released behind the holder's
 * back and taken by "thief"): the next renewal is refused and on_lost names the thief. */
static void test_lost_when_taken(void)
{
    for (size_t i = 0; i < N_MODES; i++) {
        fr_lease_backend *b = open_backend(all_modes[i]);
        lost_probe probe = {0};
        char err[512], key[64];
        fr_lease *l = held_lease(b, "lost", i, &probe, key, sizeof key);
        fr_lease_info held;
        uint64_t t = 0;
        CU_ASSERT_EQUAL(fr__lease_release_as(b, key, fr__lease_holder(l), fr__lease_token(l), &held,
                                             err, sizeof err),
                        FR_OK);
        CU_ASSERT_EQUAL(
            fr__lease_try_acquire(b, key, "thief", 5000 * MS, &t, &held, err, sizeof err), FR_OK);
        CU_ASSERT(t > fr__lease_token(l));
        for (int w = 0; w < 100 && !atomic_load(&probe.calls); w++)
            sleep_ms(10);
        CU_ASSERT_EQUAL(atomic_load(&probe.calls), 1);
        CU_ASSERT_TRUE(fr__lease_is_lost(l));
        CU_ASSERT_PTR_NOT_NULL(strstr(probe.message, "renewal refused (held by thief)"));
        CU_ASSERT_PTR_NOT_NULL(strstr(probe.message, key));
        CU_ASSERT_EQUAL(fr__lease_release(l, err, sizeof err), FR_E_LEASE_LOST);
        /* The thief still holds it: the loser's release did not free it. */
        CU_ASSERT_EQUAL(fr__lease_release_as(b, key, "thief", t, &held, err, sizeof err), FR_OK);
        CU_ASSERT_EQUAL(atomic_load(&probe.calls), 1);
        fr__lease_backend_close(b);
    }
}

static void test_wait_for_release(void)
{
    for (size_t i = 0; i < N_MODES; i++) {
        fr_lease_backend *b = open_backend(all_modes[i]);
        char err[512], key[64];
        snprintf(key, sizeof key, "wait:%zu:%ld", i, (long)fr__mono_us());
        fr_lease_info held;
        uint64_t t = 0;
        /* Held for 200ms by another holder that never renews. */
        CU_ASSERT_EQUAL(fr__lease_try_acquire(b, key, "busy", 200 * MS, &t, &held, err, sizeof err),
                        FR_OK);
        fr_lease_acquire_opts o = {.ttl_us = 1000 * MS, .wait_us = 0};
        fr_lease *l = NULL;
        CU_ASSERT_EQUAL(fr__lease_acquire(b, key, &o, &l, err, sizeof err), FR_E_UNAVAILABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "held by busy"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, key));
        int64_t t0 = fr__mono_us();
        o.wait_us = 50 * MS;
        CU_ASSERT_EQUAL(fr__lease_acquire(b, key, &o, &l, err, sizeof err), FR_E_UNAVAILABLE);
        CU_ASSERT(fr__mono_us() - t0 < 150 * MS);
        o.wait_us = 3000 * MS;
        CU_ASSERT_EQUAL_FATAL(fr__lease_acquire(b, key, &o, &l, err, sizeof err), FR_OK);
        CU_ASSERT(fr__mono_us() - t0 >= 150 * MS);
        CU_ASSERT(fr__lease_token(l) > t);
        CU_ASSERT_EQUAL(fr__lease_release(l, err, sizeof err), FR_OK);
        fr__lease_backend_close(b);
    }
}

/* ---- concurrency: threads racing for one key -------------------------------------------- */

typedef struct race {
    fr_lease_backend *b;
    char key[64];
    atomic_int inside;
    atomic_int overlaps;
    atomic_long wins;
    uint64_t last_token; /* written only while holding the lease */
    atomic_int token_errors;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    char holder[32], err[512];
    snprintf(holder, sizeof holder, "t%lx", (unsigned long)pthread_self());
    /* Each racer goes on until it has won 25 times (a bounded number of tries), so the
     * race has wins to check however the threads are scheduled (a busy machine under
     * sanitizers once left fewer than 150 wins in 150 tries each). */
    for (int i = 0, won = 0; won < 25 && i < 200000; i++) {
        uint64_t t = 0;
        fr_lease_info held;
        if (fr__lease_try_acquire(r->b, r->key, holder, 10000 * MS, &t, &held, err, sizeof err) !=
            FR_OK) {
            sched_yield();
            continue;
        }
        won++;
        if (atomic_fetch_add(&r->inside, 1) != 0)
            atomic_fetch_add(&r->overlaps, 1);
        if (t <= r->last_token)
            atomic_fetch_add(&r->token_errors, 1);
        r->last_token = t;
        atomic_fetch_add(&r->wins, 1);
        atomic_fetch_sub(&r->inside, 1);
        if (fr__lease_release_as(r->b, r->key, holder, t, &held, err, sizeof err) != FR_OK)
            atomic_fetch_add(&r->token_errors, 1);
    }
    return NULL;
}

static void test_threads_race(void)
{
    const fr_lease_mode modes[] = {FR_LEASE_MEMORY, FR_LEASE_FILE};
    for (size_t m = 0; m < 2; m++) {
        race r = {.b = open_backend(modes[m])};
        snprintf(r.key, sizeof r.key, "race:%ld", (long)fr__mono_us());
        pthread_t th[8];
        for (int i = 0; i < 8; i++)
            pthread_create(&th[i], NULL, racer, &r);
        for (int i = 0; i < 8; i++)
            pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(atomic_load(&r.overlaps), 0);
        CU_ASSERT_EQUAL(atomic_load(&r.token_errors), 0);
        CU_ASSERT(atomic_load(&r.wins) >= 150); /* the key was free most of the time */
        CU_ASSERT_EQUAL(r.last_token, (uint64_t)atomic_load(&r.wins));
        fr__lease_backend_close(r.b);
    }
}

/* The memory backend is one table for the process: two opens share it. */
static void test_memory_process_wide(void)
{
    fr_lease_backend *a = open_backend(FR_LEASE_MEMORY), *b = open_backend(FR_LEASE_MEMORY);
    char err[256];
    uint64_t t1 = 0, t2 = 0;
    fr_lease_info held;
    CU_ASSERT_EQUAL(fr__lease_try_acquire(a, "pw", "x", 5000 * MS, &t1, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, "pw", "y", 5000 * MS, &t2, &held, err, sizeof err),
                    FR_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(fr__lease_release_as(a, "pw", "x", t1, &held, err, sizeof err), FR_OK);
    fr__lease_backend_close(a);
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, "pw", "y", 5000 * MS, &t2, &held, err, sizeof err),
                    FR_OK);
    CU_ASSERT(t2 > t1);
    fr__lease_backend_close(b);
}

/* ---- file backend ---------------------------------------------------------------------------- */

static void test_file_names(void)
{
    static const struct {
        const char *key, *name;
    } cases[] = {
        {"run:default:hello", "run%3Adefault%3Ahello.lease"},
        {"plain-key_1.v2", "plain-key_1.v2.lease"},
        {"../etc/passwd", "%2E.%2Fetc%2Fpasswd.lease"},
        {".hidden", "%2Ehidden.lease"},
        {"a b\n%", "a%20b%0A%25.lease"},
        {"pipelines/main", "pipelines%2Fmain.lease"},
        {"caf\xc3\xa9", "caf%C3%A9.lease"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(fr__lease_file_name(cases[i].key, out, sizeof out), 0);
        CU_ASSERT_STRING_EQUAL(out, cases[i].name);
    }
    /* Distinct keys that would collide under a lossy mapping. */
    char a[256], b[256];
    fr__lease_file_name("a:b", a, sizeof a);
    fr__lease_file_name("a_b", b, sizeof b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* Long keys: bounded names, still distinct. */
    char k1[1001], k2[1001];
    memset(k1, 'k', 1000);
    k1[1000] = '\0';
    memcpy(k2, k1, sizeof k1);
    k2[999] = 'z';
    fr__lease_file_name(k1, a, sizeof a);
    fr__lease_file_name(k2, b, sizeof b);
    CU_ASSERT(strlen(a) <= 200 && strlen(b) <= 200);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_PTR_NOT_NULL(strstr(a, ".lease"));
    CU_ASSERT_EQUAL(fr__lease_file_name("x", out, 16), -1);
}

static void test_file_on_disk(void)
{
    fr_lease_backend *b = open_backend(FR_LEASE_FILE);
    char err[512], path[4400];
    uint64_t t = 0, t2 = 0;
    fr_lease_info held;
    /* A key with a slash stays one file in the directory. */
    CU_ASSERT_EQUAL(
        fr__lease_try_acquire(b, "../disk/key", "h", 5000 * MS, &t, &held, err, sizeof err), FR_OK);
    snprintf(path, sizeof path, "%s/%%2E.%%2Fdisk%%2Fkey.lease", tmp_dir);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 256);
    CU_ASSERT_EQUAL(fr__lease_release_as(b, "../disk/key", "h", t, &held, err, sizeof err), FR_OK);
    fr__lease_backend_close(b);
    /* The counter lives in the file: a new backend (another process) goes on from it. */
    b = open_backend(FR_LEASE_FILE);
    CU_ASSERT_EQUAL(
        fr__lease_try_acquire(b, "../disk/key", "h", 5000 * MS, &t2, &held, err, sizeof err),
        FR_OK);
    CU_ASSERT_EQUAL(t2, t + 1);
    /* A file that is not a lease record is an error, never a counter reset. */
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(
        fr__lease_try_acquire(b, "../disk/key", "h", 5000 * MS, &t2, &held, err, sizeof err),
        FR_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a fluxroute lease file"));
    unlink(path);
    /* Holder ids with blanks would break the record. */
    CU_ASSERT_EQUAL(fr__lease_try_acquire(b, "k", "a b", 5000 * MS, &t2, &held, err, sizeof err),
                    FR_E_INVALID);
    fr__lease_backend_close(b);
    /* A directory that cannot be created is a config error naming it. */
    fr_lease_config cfg = {.enabled = 1, .mode = FR_LEASE_FILE, .dir = "/proc/no/such/dir"};
    CU_ASSERT_EQUAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/proc/no/such/dir"));
}

/* ---- Redis -------------------------------------------------------------------------------- */

static void test_redis_urls(void)
{
    fr_redis_url u;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(fr__redis_url_parse("redis://127.0.0.1:6380/2", &u, err, sizeof err),
                          FR_OK);
    CU_ASSERT_STRING_EQUAL(u.host, "127.0.0.1");
    CU_ASSERT_EQUAL(u.port, 6380);
    CU_ASSERT_EQUAL(u.db, 2);
    CU_ASSERT_PTR_NULL(u.password);
    CU_ASSERT_STRING_EQUAL(u.redacted, "redis://127.0.0.1:6380/2");
    fr__redis_url_free(&u);
    CU_ASSERT_EQUAL_FATAL(fr__redis_url_parse("redis://localhost", &u, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(u.port, 6379);
    CU_ASSERT_EQUAL(u.db, 0);
    fr__redis_url_free(&u);
    CU_ASSERT_EQUAL_FATAL(
        fr__redis_url_parse("redis://app:s3cr%40t@cache:7000/5", &u, err, sizeof err), FR_OK);
    CU_ASSERT_STRING_EQUAL(u.user, "app");
    CU_ASSERT_STRING_EQUAL(u.password, "s3cr@t");
    CU_ASSERT_STRING_EQUAL(u.redacted, "redis://app:***@cache:7000/5");
    fr__redis_url_free(&u);
    CU_ASSERT_EQUAL_FATAL(fr__redis_url_parse("redis://:pw@[::1]:7001/", &u, err, sizeof err),
                          FR_OK);
    CU_ASSERT_STRING_EQUAL(u.host, "::1");
    CU_ASSERT_EQUAL(u.port, 7001);
    CU_ASSERT_STRING_EQUAL(u.redacted, "redis://:***@[::1]:7001/0");
    fr__redis_url_free(&u);

    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"", "empty"},
        {"rediss://u:hunter2@cache:6380/0", "TLS (rediss://) is not supported"},
        {"http://u:hunter2@cache", "expected redis://"},
        {"redis://:hunter2@:6379", "missing host"},
        {"redis://:hunter2@cache:0", "port must be"},
        {"redis://:hunter2@cache:70000", "port must be"},
        {"redis://:hunter2@cache:abc", "port must be"},
        {"redis://:hunter2@cache/x", "database must be"},
        {"redis://:hunter2@cache/-1", "database must be"},
        {"redis://:hunter2@cache?db=1", "query parameters"},
        {"redis://:hunter2%zz@cache", "bad %-escape in the password"},
        {"redis://:hunter2@[::1", "unterminated ["},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(fr__redis_url_parse(bad[i].url, &u, err, sizeof err), FR_E_CONFIG);
        if (!strstr(err, bad[i].msg))
            fprintf(stderr, "url %s: got \"%s\", want \"%s\"\n", bad[i].url, err, bad[i].msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].msg));
        CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
        fr__redis_url_free(&u);
    }
}

/* Connection problems are reported with the URL, never with the password. */
static void test_redis_connect_errors(void)
{
    char url[160], err[512];
    fr_lease_backend *b = NULL;
    fr_lease_config cfg = {
        .enabled = 1, .mode = FR_LEASE_REDIS, .redis_url = url, .redis_prefix = "frtest"};
    snprintf(url, sizeof url, "redis://:wrong-hunter2@127.0.0.1:%d/0", redis_main.port);
    CU_ASSERT_EQUAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_E_AUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "AUTH refused"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "redis://:***@127.0.0.1"));
    CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%d/0", free_port());
    CU_ASSERT_EQUAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_E_NETWORK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "connect"));
    CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
    cfg.redis_url = "rediss://:hunter2@127.0.0.1:6380/0";
    CU_ASSERT_EQUAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_E_CONFIG);
    CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));
}

/* Without the Redis backend registered (an embedder of libfluxroute, which does not link
 * hiredis), asking for it is a configuration error that says so. */
static void test_redis_not_registered(void)
{
    char err[512] = "";
    fr_lease_backend *b = NULL;
    fr_lease_config cfg = {.enabled = 1,
                           .mode = FR_LEASE_REDIS,
                           .redis_url = redis_main.url,
                           .redis_prefix = "frtest"};
    CU_ASSERT_EQUAL(fr__lease_backend_register("redis", NULL), FR_OK);
    CU_ASSERT_EQUAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_E_CONFIG);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lease backend 'redis' is not available in this library"));
    CU_ASSERT_EQUAL(fr__lease_backend_register("redis", fr__lease_redis_open), FR_OK);
    CU_ASSERT_EQUAL(fr__lease_backend_register("etcd", fr__lease_redis_open), FR_E_INVALID);
    CU_ASSERT_EQUAL_FATAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_OK);
    fr__lease_backend_close(b);
}

/* The data in Redis: "<prefix>:<key>" = "<token> <holder>" with a PX expiry, the
 * counter in "<prefix>-fencing:<key>"; a third party overwriting the key makes the
 * holder lose the lease. */
static void test_redis_layout_and_steal(void)
{
    fr_lease_backend *b = open_backend(FR_LEASE_REDIS);
    lost_probe probe = {0};
    fr_lease_acquire_opts o = {.ttl_us = 300 * MS, .on_lost = on_lost, .on_lost_ud = &probe};
    fr_lease *l = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(fr__lease_acquire(b, "layout", &o, &l, err, sizeof err), FR_OK);
    redisContext *c = redis_admin(redis_main.port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    redisReply *r = redisCommand(c, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(c, "GET frtest:layout");
    char want[256];
    snprintf(want, sizeof want, "%llu %s", (unsigned long long)fr__lease_token(l),
             fr__lease_holder(l));
    CU_ASSERT(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, want));
    freeReplyObject(r);
    r = redisCommand(c, "PTTL frtest:layout");
    CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 300);
    freeReplyObject(r);
    r = redisCommand(c, "GET frtest-fencing:layout");
    CU_ASSERT(r && r->type == REDIS_REPLY_STRING &&
              strtoull(r->str, NULL, 10) == fr__lease_token(l));
    freeReplyObject(r);
    r = redisCommand(c, "SET frtest:layout %s", "999 intruder");
    freeReplyObject(r);
    for (int w = 0; w < 100 && !atomic_load(&probe.calls); w++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(atomic_load(&probe.calls), 1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(probe.message, "lease layout: renewal refused (held by intruder)"));
    CU_ASSERT_EQUAL(fr__lease_release(l, err, sizeof err), FR_E_LEASE_LOST);
    r = redisCommand(c, "GET frtest:layout");
    CU_ASSERT(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "999 intruder"));
    freeReplyObject(r);
    r = redisCommand(c, "DEL frtest:layout");
    freeReplyObject(r);
    redisFree(c);
    fr__lease_backend_close(b);
}

/* A Redis that goes away: the lease is lost once the TTL passed without renewal, not
 * before. */
static void test_redis_down(void)
{
    redis_server s = {0};
    CU_ASSERT_EQUAL_FATAL(redis_start(&s), 0);
    fr_lease_config cfg = {
        .enabled = 1, .mode = FR_LEASE_REDIS, .redis_url = s.url, .redis_prefix = "frtest"};
    fr_lease_backend *b = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(fr__lease_backend_open(&cfg, &b, err, sizeof err), FR_OK);
    lost_probe probe = {0};
    fr_lease_acquire_opts o = {.ttl_us = 300 * MS, .on_lost = on_lost, .on_lost_ud = &probe};
    fr_lease *l = NULL;
    CU_ASSERT_EQUAL_FATAL(fr__lease_acquire(b, "down", &o, &l, err, sizeof err), FR_OK);
    sleep_ms(150);
    int64_t t0 = fr__mono_us();
    redis_stop(&s);
    for (int w = 0; w < 200 && !atomic_load(&probe.calls); w++)
        sleep_ms(10);
    int64_t dt = fr__mono_us() - t0;
    CU_ASSERT_EQUAL(atomic_load(&probe.calls), 1);
    CU_ASSERT(dt >= 50 * MS && dt < 1500 * MS);
    CU_ASSERT_PTR_NOT_NULL(strstr(probe.message, "unreachable for longer than the TTL"));
    CU_ASSERT_PTR_NULL(strstr(probe.message, REDIS_PASS));
    CU_ASSERT_NOT_EQUAL(fr__lease_release(l, err, sizeof err), FR_OK);
    CU_ASSERT_PTR_NULL(strstr(err, REDIS_PASS));
    fr__lease_backend_close(b);
}

/* ---- configuration --------------------------------------------------------------------------- */

static void test_config_env(void)
{
    static const struct {
        const char *enabled, *mode, *ttl, *url;
        fr_status want;
        const char *msg;
    } cases[] = {
        {NULL, "bogus", NULL, NULL, FR_OK, NULL}, /* disabled: nothing else is looked at */
        {"0", NULL, NULL, NULL, FR_OK, NULL},
        {"maybe", NULL, NULL, NULL, FR_E_CONFIG, "COORDINATION_ENABLED"},
        {" YES ", NULL, NULL, NULL, FR_OK, NULL},
        {"on", "bogus", NULL, NULL, FR_E_CONFIG, "unknown mode \"bogus\""},
        {"true", " Memory ", NULL, NULL, FR_OK, NULL},
        {"1", NULL, "90", NULL, FR_E_CONFIG, "COORDINATION_TTL: invalid duration \"90\""},
        {"1", NULL, "1us", NULL, FR_E_CONFIG, "at least 3ms"},
        {"1", NULL, "-5s", NULL, FR_E_CONFIG, "at least 3ms"},
        {"1", "redis", NULL, NULL, FR_E_CONFIG, "COORDINATION_REDIS_URL: required"},
        {"1", "redis", "30s", "redis://h", FR_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
#define SETENV(n, v) ((v) ? setenv(n, v, 1) : unsetenv(n))
        SETENV("COORDINATION_ENABLED", cases[i].enabled);
        SETENV("COORDINATION_MODE", cases[i].mode);
        SETENV("COORDINATION_TTL", cases[i].ttl);
        SETENV("COORDINATION_REDIS_URL", cases[i].url);
#undef SETENV
        fr_lease_config cfg;
        char err[512] = "";
        fr_status st = fr__lease_config_from_env(&cfg, err, sizeof err);
        CU_ASSERT_EQUAL(st, cases[i].want);
        if (cases[i].msg) {
            if (!strstr(err, cases[i].msg))
                fprintf(stderr, "case %zu: got \"%s\"\n", i, err);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].msg));
        }
        if (st == FR_OK)
            fr__lease_config_free(&cfg);
    }
    unsetenv("COORDINATION_TTL");
    unsetenv("COORDINATION_REDIS_URL");
    setenv("COORDINATION_ENABLED", "1", 1);
    unsetenv("COORDINATION_MODE");
    fr_lease_config cfg;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(fr__lease_config_from_env(&cfg, err, sizeof err), FR_OK);
    CU_ASSERT_EQUAL(cfg.mode, FR_LEASE_FILE);
    CU_ASSERT_EQUAL(cfg.ttl_us, 120000 * MS);
    CU_ASSERT_STRING_EQUAL(cfg.redis_prefix, "fluxroute");
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.dir, "/fluxroute-coordination"));
    fr__lease_config_free(&cfg);
    unsetenv("COORDINATION_ENABLED");
}

/* ---- plugins' host API -------------------------------------------------------------------- */

static void test_host_api(void)
{
    setenv("COORDINATION_ENABLED", "1", 1);
    setenv("COORDINATION_MODE", "memory", 1);
    fr_instance inst = {.id = "agent"};
    fr_cancel *c1 = fr__cancel_new(), *c2 = fr__cancel_new();
    fr_arena a1 = {0}, a2 = {0};
    fr_call call1, call2;
    fr__call_init(&call1, c1, &inst, "s1", 1, 0, 1, &a1);
    fr__call_init(&call2, c2, &inst, "s2", 1, 0, 1, &a2);
    uint64_t t1 = 0, t2 = 0;
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call1, "shared", 200 * MS, 0, &t1), FR_OK);
    CU_ASSERT(t1 >= 1);
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call1, "shared", 200 * MS, 0, &t2), FR_E_INVALID);
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call2, "shared", 200 * MS, 30 * MS, &t2),
                    FR_E_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(call2.error && strstr(call2.error, "plugin:shared is held by"));
    CU_ASSERT_EQUAL(fr__host_lease_release(&call2, "shared"), FR_E_NOT_FOUND);
    sleep_ms(400); /* renewed in the background while the call runs */
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call2, "shared", 200 * MS, 0, &t2), FR_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(fr__call_check(&call1), FR_OK);
    /* The end of call1 releases what it still holds. */
    fr__host_leases_end_call(&call1);
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call2, "shared", 0, 0, &t2), FR_OK);
    CU_ASSERT(t2 > t1);
    CU_ASSERT_EQUAL(fr__host_lease_release(&call2, "shared"), FR_OK);
    CU_ASSERT_EQUAL(fr__host_lease_release(&call2, "shared"), FR_E_NOT_FOUND);
    /* A cancelled call stops waiting with its status. */
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call1, "w", 5000 * MS, 0, &t1), FR_OK);
    fr__cancel_fire(c2);
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call2, "w", 5000 * MS, 2000 * MS, &t2), FR_E_CANCELLED);
    fr__host_leases_end_call(&call1);
    fr__host_leases_end_call(&call2);
    CU_ASSERT_EQUAL(fr__host_lease_acquire(&call1, "", 0, 0, &t1), FR_E_INVALID);
    fr__call_done(&call1);
    fr__call_done(&call2);
    fr__arena_free(&a1);
    fr__arena_free(&a2);
    fr__cancel_unref(c1);
    fr__cancel_unref(c2);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/fr-lease-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (redis_start(&redis_main) != 0) {
        fprintf(stderr, "test_lease: cannot start redis-server (Debian package redis-server)\n");
        return 1;
    }
    /* As the fluxroute command does: the Redis backend is outside the engine part. */
    fr__lease_backend_register("redis", fr__lease_redis_open);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("lease", NULL, NULL);
    CU_add_test(s, "backend semantics: tokens, holders, expiry", test_semantics);
    CU_add_test(s, "renewal keeps a lease past several TTLs", test_renewal_keeps_lease);
    CU_add_test(s, "a taken lease is lost and reported once", test_lost_when_taken);
    CU_add_test(s, "waiting for a held key", test_wait_for_release);
    CU_add_test(s, "threads racing for one key", test_threads_race);
    CU_add_test(s, "memory backend is process-wide", test_memory_process_wide);
    CU_add_test(s, "file names for keys", test_file_names);
    CU_add_test(s, "file backend on disk", test_file_on_disk);
    CU_add_test(s, "redis URLs", test_redis_urls);
    CU_add_test(s, "redis connection errors", test_redis_connect_errors);
    CU_add_test(s, "redis not registered", test_redis_not_registered);
    CU_add_test(s, "redis layout and a stolen key", test_redis_layout_and_steal);
    CU_add_test(s, "redis going down", test_redis_down);
    CU_add_test(s, "COORDINATION_* environment", test_config_env);
    CU_add_test(s, "plugins' host API", test_host_api);
    int rc = fr_test_run_all();
    redis_stop(&redis_main);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
