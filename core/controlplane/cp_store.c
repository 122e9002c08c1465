/* The control plane's SQLite store (see cp_store.h).  One connection guarded by a mutex:
 * SQLite serialises writers anyway, and each write transaction ends with one fsync. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <sqlite3.h>

#include "controlplane/cp_store.h"
#include "observe/obs_impl.h"
#include "base/sha256.h"

struct fr_cp_store {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *ins_usage, *find_tenant, *lookup_key, *ins_sla;
    char (*closed)[8]; /* closed periods, cached */
    size_t n_closed;
};

/* Migration i takes the schema from version i to i + 1.  Append only. */
static const char *const migrations[] = {
    "CREATE TABLE tenants(id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " namespace TEXT NOT NULL UNIQUE, status TEXT NOT NULL DEFAULT 'active',"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys(id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('admin','service','tenant')),"
    " tenant_id TEXT REFERENCES tenants(id), role TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " revoked_at INTEGER);"
    "CREATE TABLE usage_events(seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
    " tenant_id TEXT NOT NULL, occurred_at INTEGER NOT NULL, day INTEGER NOT NULL,"
    " billed_period TEXT NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL,"
    " model TEXT NOT NULL, input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),"
    " output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),"
    " runs INTEGER NOT NULL CHECK (runs >= 0), received_at INTEGER NOT NULL);"
    "CREATE INDEX usage_by_period ON usage_events(billed_period, tenant_id);"
    "CREATE INDEX usage_by_tenant ON usage_events(tenant_id);"
    "CREATE TABLE rate_cards(version INTEGER PRIMARY KEY, effective_from TEXT NOT NULL,"
    " effective_day INTEGER NOT NULL, currency TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE rate_card_prices(version INTEGER NOT NULL REFERENCES rate_cards(version),"
    " model TEXT NOT NULL, input_per_mtok INTEGER NOT NULL CHECK (input_per_mtok >= 0),"
    " output_per_mtok INTEGER NOT NULL CHECK (output_per_mtok >= 0),"
    " per_run INTEGER NOT NULL CHECK (per_run >= 0), PRIMARY KEY (version, model));"
    "CREATE TABLE closed_periods(period TEXT PRIMARY KEY, closed_at INTEGER NOT NULL);"
    "CREATE TABLE sla_reports(reporter TEXT NOT NULL, window_start INTEGER NOT NULL,"
    " window_end INTEGER NOT NULL, requests INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " p50_ms INTEGER NOT NULL, p99_ms INTEGER NOT NULL, received_at INTEGER NOT NULL,"
    " PRIMARY KEY (reporter, window_start, window_end));",
    /* 2: idempotency keys unique per tenant.  SQLite cannot drop a column's UNIQUE, so the
     * table is rebuilt (same columns, same order, rows and seq kept); the new unique index
     * leads with tenant_id and so replaces usage_by_tenant. */
    "CREATE TABLE usage_events_v2(seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL,"
    " tenant_id TEXT NOT NULL, occurred_at INTEGER NOT NULL, day INTEGER NOT NULL,"
    " billed_period TEXT NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL,"
    " model TEXT NOT NULL, input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),"
    " output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),"
    " runs INTEGER NOT NULL CHECK (runs >= 0), received_at INTEGER NOT NULL,"
    " UNIQUE (tenant_id, idempotency_key));"
    "INSERT INTO usage_events_v2 SELECT seq, idempotency_key, tenant_id, occurred_at, day,"
    " billed_period, kind, provider, model, input_tokens, output_tokens, runs, received_at"
    " FROM usage_events;"
    "DROP TABLE usage_events;"
    "ALTER TABLE usage_events_v2 RENAME TO usage_events;"
    "CREATE INDEX usage_by_period ON usage_events(billed_period, tenant_id);",
    /* 3: provider calls whose provider reported no usage are counted apart (their tokens
     * are 0 because unknown).  Rows written before were all reported: 0. */
    "ALTER TABLE usage_events ADD COLUMN usage_unknown INTEGER NOT NULL DEFAULT 0"
    " CHECK (usage_unknown IN (0, 1));",
    /* 4: limit documents of tenants and keys (issue 26), as canonical JSON text. */
    "CREATE TABLE tenant_limits(tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " doc TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE key_limits(key_id TEXT PRIMARY KEY REFERENCES api_keys(id),"
    " doc TEXT NOT NULL, updated_at INTEGER NOT NULL);",
    /* 5: the API key a usage event was made with ('' when unknown: events before, or sent
     * without one), so a key's monthly spend can be read back (issue 26). */
    "ALTER TABLE usage_events ADD COLUMN key_id TEXT NOT NULL DEFAULT '';",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == FR_CP_SCHEMA_VERSION, "one migration per schema version");

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void period_of(int64_t t, char out[8])
{
    char ts[21];
    fr__rfc3339_format(t, ts);
    snprintf(out, 8, "%.7s", ts);
}

static int exec(fr_cp_store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (err)
            snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int user_version(fr_cp_store *s)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

static int load_closed(fr_cp_store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT period FROM closed_periods", -1, &st, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char(*n)[8] = realloc(s->closed, (s->n_closed + 1) * sizeof *n);
        if (!n)
            break;
        s->closed = n;
        snprintf(s->closed[s->n_closed++], 8, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return 0;
}

/* SQLite's busy handler: the database is locked by another connection (a second process,
 * a backup, the sqlite3 shell).  Waits as sqlite3_busy_timeout(10 s) did, 1 ms growing to
 * 100 ms between tries, counting each wait in fluxroute_cp_sqlite_busy_retries_total;
 * after 10 s of waiting the statement fails with SQLITE_BUSY. */
static int busy_wait(void *arg, int tries)
{
    (void)arg;
    static const int delays_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    enum { N = sizeof delays_ms / sizeof delays_ms[0], TOTAL_MS = 10000 };
    int waited = 0, i;
    for (i = 0; i < tries && i < N; i++)
        waited += delays_ms[i];
    if (tries >= N)
        waited += (tries - N) * 100;
    if (waited >= TOTAL_MS)
        return 0;
    int delay = tries < N ? delays_ms[tries] : 100;
    fr__metric_count(FR_M_CP_SQLITE_BUSY_RETRIES, NULL, 1);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)delay * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

fr_status fr__cp_store_open(const char *path, fr_cp_store **out, char *err, size_t errlen)
{
    *out = NULL;
    fr_cp_store *s = calloc(1, sizeof *s);
    if (!s)
        return FR_E_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        fr__cp_store_close(s);
        return FR_E_IO;
    }
    sqlite3_busy_handler(s->db, busy_wait, NULL);
    char msg[512];
    /* WAL + synchronous=FULL: every commit is fsynced before it returns. */
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", msg,
             sizeof msg)) {
        snprintf(err, errlen, "database %s: %s", path, msg);
        fr__cp_store_close(s);
        return FR_E_IO;
    }
    int v = user_version(s);
    if (v > FR_CP_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "database %s has schema version %d, written by a newer fluxroute (this one "
                 "supports up to %d); refusing to open it",
                 path, v, FR_CP_SCHEMA_VERSION);
        fr__cp_store_close(s);
        return FR_E_UNSUPPORTED;
    }
    for (int i = v < 0 ? 0 : v; i < N_MIGRATIONS; i++) {
        char setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version=%d;", i + 1);
        if (exec(s, "BEGIN IMMEDIATE", msg, sizeof msg) ||
            exec(s, migrations[i], msg, sizeof msg) || exec(s, setv, msg, sizeof msg) ||
            exec(s, "COMMIT", msg, sizeof msg)) {
            exec(s, "ROLLBACK", NULL, 0);
            snprintf(err, errlen, "database %s: migration to schema version %d failed: %s", path,
                     i + 1, msg);
            fr__cp_store_close(s);
            return FR_E_IO;
        }
    }
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(fr_cp_store, ins_usage),
         "INSERT OR IGNORE INTO usage_events(idempotency_key, tenant_id, occurred_at, day,"
         " billed_period, kind, provider, model, input_tokens, output_tokens, runs, received_at,"
         " usage_unknown, key_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
        {offsetof(fr_cp_store, find_tenant), "SELECT 1 FROM tenants WHERE id = ?"},
        {offsetof(fr_cp_store, lookup_key),
         "SELECT k.id, k.kind, IFNULL(k.tenant_id, ''), k.role, IFNULL(t.namespace, ''),"
         " IFNULL(t.status, '') FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id"
         " WHERE k.sha256 = ? AND k.revoked_at IS NULL"},
        {offsetof(fr_cp_store, ins_sla),
         "INSERT OR IGNORE INTO sla_reports VALUES (?,?,?,?,?,?,?,?)"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)(void *)((char *)s + stmts[i].off);
        if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(s->db));
            fr__cp_store_close(s);
            return FR_E_IO;
        }
    }
    load_closed(s);
    *out = s;
    return FR_OK;
}

void fr__cp_store_close(fr_cp_store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins_usage);
    sqlite3_finalize(s->find_tenant);
    sqlite3_finalize(s->lookup_key);
    sqlite3_finalize(s->ins_sla);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->closed);
    free(s);
}

int fr__cp_store_ping(fr_cp_store *s)
{
    pthread_mutex_lock(&s->mu);
    int ok = exec(s, "SELECT 1", NULL, 0) == 0;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* ---- small statement helpers ----------------------------------------------------------- */

/* Prepares sql and binds the arguments described by `types` ('t' text, 'i' int64). */
static sqlite3_stmt *prep(fr_cp_store *s, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    return st;
}

/* Runs a one-shot statement; returns the sqlite3_step code (SQLITE_DONE on success). */
static int run1(sqlite3_stmt *st)
{
    if (!st)
        return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* The row's columns as a JSON object; names from the statement. */
static json_object *row_json(sqlite3_stmt *st)
{
    json_object *o = json_object_new_object();
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const char *name = sqlite3_column_name(st, i);
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            json_object_object_add(o, name, json_object_new_int64(sqlite3_column_int64(st, i)));
            break;
        case SQLITE_NULL: json_object_object_add(o, name, NULL); break;
        default: json_object_object_add(o, name, json_object_new_string(col_text(st, i)));
        }
    }
    return o;
}

/* Every row of st as an array of objects; finalizes st. */
static json_object *rows_json(sqlite3_stmt *st)
{
    json_object *a = json_object_new_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_object_array_add(a, row_json(st));
    sqlite3_finalize(st);
    return a;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(buf + got, nbytes - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
}

/* ---- keys ------------------------------------------------------------------------------ */

const char *fr__key_kind_name(fr_key_kind k)
{
    return k == FR_KEY_ADMIN ? "admin" : k == FR_KEY_SERVICE ? "service" : "tenant";
}

static fr_key_kind kind_from(const char *s)
{
    return strcmp(s, "admin") == 0     ? FR_KEY_ADMIN
           : strcmp(s, "service") == 0 ? FR_KEY_SERVICE
                                       : FR_KEY_TENANT;
}

fr_status fr__cp_store_key_create(fr_cp_store *s, fr_key_kind kind, const char *tenant,
                                  const char *role, char plain[80], fr_cp_key *info)
{
    static const char tag[] = {'a', 's', 't'};
    char rnd[49], hash[65], id[40];
    random_hex(rnd, 24);
    snprintf(plain, 80, "fr%c_%s", tag[kind], rnd);
    fr__sha256_hex(plain, strlen(plain), hash);
    char idrnd[17];
    random_hex(idrnd, 8);
    snprintf(id, sizeof id, "key_%s", idrnd);
    const char *r = kind == FR_KEY_TENANT ? role : fr__key_kind_name(kind);
    pthread_mutex_lock(&s->mu);
    fr_status st = FR_OK;
    if (kind == FR_KEY_TENANT) {
        sqlite3_reset(s->find_tenant);
        sqlite3_bind_text(s->find_tenant, 1, tenant, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s->find_tenant) != SQLITE_ROW)
            st = FR_E_NOT_FOUND;
        sqlite3_reset(s->find_tenant);
    }
    char prefix[13];
    snprintf(prefix, sizeof prefix, "%.12s", plain);
    if (st == FR_OK) {
        sqlite3_stmt *q = prep(
            s, "INSERT INTO api_keys VALUES (?1,?2,?3,?4,NULLIF(?5,''),?6,?7,NULL)", "tttttti", id,
            hash, prefix, fr__key_kind_name(kind), kind == FR_KEY_TENANT ? tenant : "", r, now_s());
        if (run1(q) != SQLITE_DONE)
            st = FR_E_IO;
    }
    pthread_mutex_unlock(&s->mu);
    if (st == FR_OK && info) {
        memset(info, 0, sizeof *info);
        snprintf(info->id, sizeof info->id, "%s", id);
        info->kind = kind;
        snprintf(info->tenant, sizeof info->tenant, "%s", kind == FR_KEY_TENANT ? tenant : "");
        snprintf(info->role, sizeof info->role, "%s", r);
    }
    return st;
}

fr_status fr__cp_store_key_register_admin(fr_cp_store *s, const char *sha256_hex)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s,
                           "INSERT OR IGNORE INTO api_keys VALUES ('key_env_' || substr(?1, 1, 12),"
                           " ?1, 'env', 'admin', NULL, 'admin', ?2, NULL)",
                           "ti", sha256_hex, now_s());
    int rc = run1(q);
    pthread_mutex_unlock(&s->mu);
    return rc == SQLITE_DONE ? FR_OK : FR_E_IO;
}

fr_status fr__cp_store_key_lookup(fr_cp_store *s, const char *sha256_hex, fr_cp_key *out)
{
    fr_status st = FR_E_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = s->lookup_key;
    sqlite3_bind_text(q, 1, sha256_hex, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->id, sizeof out->id, "%s", col_text(q, 0));
        out->kind = kind_from(col_text(q, 1));
        snprintf(out->tenant, sizeof out->tenant, "%s", col_text(q, 2));
        snprintf(out->role, sizeof out->role, "%s", col_text(q, 3));
        snprintf(out->namespace_, sizeof out->namespace_, "%s", col_text(q, 4));
        out->tenant_active = strcmp(col_text(q, 5), "active") == 0;
        st = FR_OK;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    pthread_mutex_unlock(&s->mu);
    return st;
}

json_object *fr__cp_store_key_list(fr_cp_store *s, const char *tenant)
{
    pthread_mutex_lock(&s->mu);
    json_object *a = rows_json(prep(s,
                                    "SELECT id AS key_id, prefix, role, created_at, revoked_at,"
                                    " CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END"
                                    " AS status FROM api_keys WHERE tenant_id = ? ORDER BY"
                                    " created_at, id",
                                    "t", tenant));
    pthread_mutex_unlock(&s->mu);
    return a;
}

fr_status fr__cp_store_key_revoke(fr_cp_store *s, const char *key_id, const char *tenant)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s,
                           "UPDATE api_keys SET revoked_at = IFNULL(revoked_at, ?1) WHERE id = ?2"
                           " AND (?3 = '' OR tenant_id = ?3)",
                           "itt", now_s(), key_id, tenant ? tenant : "");
    int rc = run1(q);
    int changed = sqlite3_changes(s->db);
    pthread_mutex_unlock(&s->mu);
    if (rc != SQLITE_DONE)
        return FR_E_IO;
    return changed ? FR_OK : FR_E_NOT_FOUND;
}

/* ---- tenants --------------------------------------------------------------------------- */

fr_status fr__cp_store_tenant_create(fr_cp_store *s, const char *id, const char *name,
                                     const char *namespace_, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    fr_status st = FR_OK;
    sqlite3_stmt *q =
        prep(s, "SELECT id FROM tenants WHERE id = ?1 OR namespace = ?2", "tt", id, namespace_);
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        if (strcmp(col_text(q, 0), id) == 0)
            snprintf(err, errlen, "tenant \"%s\" already exists", id);
        else
            snprintf(err, errlen, "namespace \"%s\" already belongs to tenant \"%s\"", namespace_,
                     col_text(q, 0));
        st = FR_E_INVALID;
    }
    sqlite3_finalize(q);
    if (st == FR_OK && run1(prep(s, "INSERT INTO tenants VALUES (?,?,?,'active',?)", "ttti", id,
                                 name, namespace_, now_s())) != SQLITE_DONE) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
        st = FR_E_IO;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

#define TENANT_COLS "id, name, namespace, status, created_at"

json_object *fr__cp_store_tenant_get(fr_cp_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT " TENANT_COLS " FROM tenants WHERE id = ?", "t", id);
    json_object *o = q && sqlite3_step(q) == SQLITE_ROW ? row_json(q) : NULL;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return o;
}

/* Escapes LIKE wildcards in q into out ("%" + q + "%"), escape character '\'. */
static void like_pattern(const char *q, char *out, size_t size)
{
    size_t n = 0;
    out[n++] = '%';
    for (; q && *q && n + 3 < size; q++) {
        if (*q == '%' || *q == '_' || *q == '\\')
            out[n++] = '\\';
        out[n++] = *q;
    }
    out[n++] = '%';
    out[n] = '\0';
}

/* Runs a paged listing: `from_where` is the SQL after SELECT <cols> (binding ?1 the LIKE
 * pattern and ?2 the `only` tenant or ''), counted then sliced. */
static json_object *paged(fr_cp_store *s, const char *cols, const char *from_where, const char *q,
                          int page, int page_size, const char *only, const char *order)
{
    char pat[300], sql[1024];
    like_pattern(q, pat, sizeof pat);
    const char *o = only ? only : "";
    pthread_mutex_lock(&s->mu);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT 1 %s)", from_where);
    sqlite3_stmt *st = prep(s, sql, "tt", pat, o);
    int64_t total = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql, "SELECT %s %s ORDER BY %s LIMIT ?3 OFFSET ?4", cols, from_where,
             order);
    json_object *items = rows_json(
        prep(s, sql, "ttii", pat, o, (int64_t)page_size, (int64_t)(page - 1) * page_size));
    pthread_mutex_unlock(&s->mu);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "page", json_object_new_int(page));
    json_object_object_add(r, "page_size", json_object_new_int(page_size));
    json_object_object_add(r, "total", json_object_new_int64(total));
    json_object_object_add(r, "items", items);
    return r;
}

json_object *fr__cp_store_tenant_list(fr_cp_store *s, const char *q, int page, int page_size,
                                      const char *only)
{
    json_object *r = paged(s, TENANT_COLS,
                           "FROM tenants WHERE (id LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\')"
                           " AND (?2 = '' OR id = ?2)",
                           q, page, page_size, only, "id");
    /* The original's shape: "tenants" is the list of ids. */
    json_object *ids = json_object_new_array(), *items;
    json_object_object_get_ex(r, "items", &items);
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *id;
        json_object_object_get_ex(json_object_array_get_idx(items, i), "id", &id);
        json_object_array_add(ids, json_object_get(id));
    }
    json_object_object_add(r, "tenants", ids);
    return r;
}

fr_status fr__cp_store_tenant_set_status(fr_cp_store *s, const char *id, const char *status)
{
    pthread_mutex_lock(&s->mu);
    int rc = run1(prep(s, "UPDATE tenants SET status = ? WHERE id = ?", "tt", status, id));
    int changed = sqlite3_changes(s->db);
    pthread_mutex_unlock(&s->mu);
    if (rc != SQLITE_DONE)
        return FR_E_IO;
    return changed ? FR_OK : FR_E_NOT_FOUND;
}

/* ---- usage ----------------------------------------------------------------------------- */

static int closed_locked(fr_cp_store *s, const char *period)
{
    for (size_t i = 0; i < s->n_closed; i++)
        if (strcmp(s->closed[i], period) == 0)
            return 1;
    return 0;
}

fr_status fr__cp_store_usage_insert(fr_cp_store *s, const fr_cp_event *ev, size_t n,
                                    const fr_cp_sla *sla, size_t n_sla, const char *reporter,
                                    size_t *accepted, size_t *duplicates, size_t *bad_index)
{
    *accepted = *duplicates = 0;
    int64_t now = now_s();
    char now_period[8];
    period_of(now, now_period);
    pthread_mutex_lock(&s->mu);
    if (exec(s, "BEGIN IMMEDIATE", NULL, 0)) {
        pthread_mutex_unlock(&s->mu);
        return FR_E_IO;
    }
    fr_status st = FR_OK;
    const char *checked = NULL;
    for (size_t i = 0; i < n && st == FR_OK; i++) {
        const fr_cp_event *e = &ev[i];
        if (!checked || strcmp(checked, e->tenant) != 0) {
            sqlite3_stmt *f = s->find_tenant;
            sqlite3_bind_text(f, 1, e->tenant, -1, SQLITE_STATIC);
            int found = sqlite3_step(f) == SQLITE_ROW;
            sqlite3_reset(f);
            if (!found) {
                *bad_index = i;
                st = FR_E_NOT_FOUND;
                break;
            }
            checked = e->tenant;
        }
        char period[8];
        period_of(e->occurred_at, period);
        const char *billed = closed_locked(s, period) ? now_period : period;
        int64_t day =
            e->occurred_at >= 0 ? e->occurred_at / 86400 : -((-e->occurred_at + 86399) / 86400);
        sqlite3_stmt *q = s->ins_usage;
        sqlite3_bind_text(q, 1, e->idem, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, e->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, e->occurred_at);
        sqlite3_bind_int64(q, 4, day);
        sqlite3_bind_text(q, 5, billed, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 6, e->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, e->provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 8, e->model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 9, e->input_tokens);
        sqlite3_bind_int64(q, 10, e->output_tokens);
        sqlite3_bind_int64(q, 11, e->runs);
        sqlite3_bind_int64(q, 12, now);
        sqlite3_bind_int(q, 13, e->usage_unknown ? 1 : 0);
        sqlite3_bind_text(q, 14, e->key_id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            st = FR_E_IO;
        else if (sqlite3_changes(s->db))
            (*accepted)++;
        else
            (*duplicates)++;
        sqlite3_reset(q);
    }
    for (size_t i = 0; i < n_sla && st == FR_OK; i++) {
        sqlite3_stmt *q = s->ins_sla;
        sqlite3_bind_text(q, 1, reporter, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, sla[i].window_start);
        sqlite3_bind_int64(q, 3, sla[i].window_end);
        sqlite3_bind_int64(q, 4, sla[i].requests);
        sqlite3_bind_int64(q, 5, sla[i].errors);
        sqlite3_bind_int64(q, 6, sla[i].p50_ms);
        sqlite3_bind_int64(q, 7, sla[i].p99_ms);
        sqlite3_bind_int64(q, 8, now);
        if (sqlite3_step(q) != SQLITE_DONE)
            st = FR_E_IO;
        sqlite3_reset(q);
    }
    if (st != FR_OK || exec(s, "COMMIT", NULL, 0)) {
        exec(s, "ROLLBACK", NULL, 0);
        *accepted = *duplicates = 0;
        if (st == FR_OK)
            st = FR_E_IO;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* The totals after tenant_id, for one tenant or per tenant. */
#define USAGE_SUMS                                                                 \
    " count(*) AS events, IFNULL(sum(runs), 0) AS invocations,"                    \
    " IFNULL(sum(runs), 0) AS runs, IFNULL(sum(input_tokens), 0) AS input_tokens," \
    " IFNULL(sum(output_tokens), 0) AS output_tokens,"                             \
    " IFNULL(sum(usage_unknown), 0) AS unknown_usage_calls"
#define USAGE_COLS "tenant_id," USAGE_SUMS

json_object *fr__cp_store_usage_tenant(fr_cp_store *s, const char *tenant)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s,
                           "SELECT ?1 AS tenant_id," USAGE_SUMS " FROM usage_events"
                           " WHERE tenant_id = ?1",
                           "t", tenant);
    json_object *o = q && sqlite3_step(q) == SQLITE_ROW ? row_json(q) : NULL;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return o;
}

json_object *fr__cp_store_usage_list(fr_cp_store *s, const char *q, int page, int page_size,
                                     const char *only)
{
    return paged(s, USAGE_COLS,
                 "FROM usage_events WHERE tenant_id LIKE ?1 ESCAPE '\\' AND (?2 = '' OR"
                 " tenant_id = ?2) GROUP BY tenant_id",
                 q, page, page_size, only, "tenant_id");
}

/* ---- rate cards and invoices ----------------------------------------------------------- */

fr_status fr__cp_store_card_create(fr_cp_store *s, const char *effective_from, int32_t day,
                                   const char *currency, const fr_price *prices, size_t n,
                                   int64_t *version, char *err, size_t errlen)
{
    char period[8];
    period_of((int64_t)day * 86400, period);
    pthread_mutex_lock(&s->mu);
    fr_status st = FR_OK;
    /* A card may not reprice a closed period: none may start in or before one. */
    for (size_t i = 0; i < s->n_closed; i++)
        if (strcmp(s->closed[i], period) >= 0) {
            snprintf(err, errlen, "effective_from %s is not after the closed period %s",
                     effective_from, s->closed[i]);
            st = FR_E_INVALID;
        }
    if (st == FR_OK && exec(s, "BEGIN IMMEDIATE", err, errlen))
        st = FR_E_IO;
    if (st == FR_OK) {
        if (run1(prep(s,
                      "INSERT INTO rate_cards(effective_from, effective_day, currency,"
                      " created_at) VALUES (?,?,?,?)",
                      "titi", effective_from, (int64_t)day, currency, now_s())) != SQLITE_DONE)
            st = FR_E_IO;
        *version = sqlite3_last_insert_rowid(s->db);
        for (size_t i = 0; i < n && st == FR_OK; i++)
            if (run1(prep(s, "INSERT INTO rate_card_prices VALUES (?,?,?,?,?)", "itiii", *version,
                          prices[i].model, prices[i].price[0], prices[i].price[1],
                          prices[i].price[2])) != SQLITE_DONE) {
                snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
                st = FR_E_INVALID;
            }
        if (st != FR_OK || exec(s, "COMMIT", err, errlen)) {
            exec(s, "ROLLBACK", NULL, 0);
            if (st == FR_OK)
                st = FR_E_IO;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Loads every card with its prices (caller frees each prices array and the cards). */
static int load_cards(fr_cp_store *s, fr_rate_card **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = prep(s,
                           "SELECT version, effective_day, currency FROM rate_cards ORDER BY"
                           " version",
                           "");
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        fr_rate_card *nc = realloc(*out, (*n + 1) * sizeof *nc);
        if (!nc)
            break;
        *out = nc;
        fr_rate_card *c = &nc[(*n)++];
        memset(c, 0, sizeof *c);
        c->version = sqlite3_column_int64(q, 0);
        c->effective_day = sqlite3_column_int(q, 1);
        snprintf(c->currency, sizeof c->currency, "%s", col_text(q, 2));
    }
    sqlite3_finalize(q);
    for (size_t i = 0; i < *n; i++) {
        fr_rate_card *c = &(*out)[i];
        q = prep(s,
                 "SELECT model, input_per_mtok, output_per_mtok, per_run FROM rate_card_prices"
                 " WHERE version = ? ORDER BY model",
                 "i", c->version);
        while (q && sqlite3_step(q) == SQLITE_ROW) {
            fr_price *np = realloc(c->prices, (c->n_prices + 1) * sizeof *np);
            if (!np)
                break;
            c->prices = np;
            fr_price *p = &np[c->n_prices++];
            snprintf(p->model, sizeof p->model, "%s", col_text(q, 0));
            for (int k = 0; k < FR_BILL_KINDS; k++)
                p->price[k] = sqlite3_column_int64(q, k + 1);
        }
        sqlite3_finalize(q);
    }
    return 0;
}

static void free_cards(fr_rate_card *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].prices);
    free(c);
}

static json_object *card_json(const fr_rate_card *c, const char *effective_from)
{
    json_object *o = json_object_new_object(), *prices = json_object_new_array();
    json_object_object_add(o, "version", json_object_new_int64(c->version));
    json_object_object_add(o, "effective_from", json_object_new_string(effective_from));
    json_object_object_add(o, "currency", json_object_new_string(c->currency));
    for (size_t i = 0; i < c->n_prices; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "model", json_object_new_string(c->prices[i].model));
        json_object_object_add(p, "input_per_mtok", json_object_new_int64(c->prices[i].price[0]));
        json_object_object_add(p, "output_per_mtok", json_object_new_int64(c->prices[i].price[1]));
        json_object_object_add(p, "per_run", json_object_new_int64(c->prices[i].price[2]));
        json_object_array_add(prices, p);
    }
    json_object_object_add(o, "prices", prices);
    return o;
}

json_object *fr__cp_store_card_list(fr_cp_store *s, int32_t today)
{
    fr_rate_card *cards;
    size_t n;
    pthread_mutex_lock(&s->mu);
    load_cards(s, &cards, &n);
    pthread_mutex_unlock(&s->mu);
    json_object *r = json_object_new_object(), *a = json_object_new_array();
    const fr_rate_card *cur = fr__bill_card_for_day(cards, n, today);
    json_object *current = NULL;
    for (size_t i = 0; i < n; i++) {
        int y;
        unsigned m, d;
        char date[11];
        fr__civil_from_days(cards[i].effective_day, &y, &m, &d);
        snprintf(date, sizeof date, "%04d-%02u-%02u", y, m, d);
        json_object_array_add(a, card_json(&cards[i], date));
        if (&cards[i] == cur)
            current = card_json(&cards[i], date);
    }
    json_object_object_add(r, "cards", a);
    json_object_object_add(r, "current", current);
    free_cards(cards, n);
    return r;
}

fr_status fr__cp_store_invoice(fr_cp_store *s, const char *tenant, const char *key_id,
                               const char *period, fr_invoice *inv, char *err, size_t errlen)
{
    fr_rate_card *cards;
    size_t n_cards, n = 0, cap = 0;
    fr_usage_agg *agg = NULL;
    fr_status st = FR_OK;
    pthread_mutex_lock(&s->mu);
    load_cards(s, &cards, &n_cards);
    sqlite3_stmt *q = prep(s,
                           "SELECT day, model, sum(input_tokens), sum(output_tokens), sum(runs),"
                           " sum(usage_unknown) FROM usage_events WHERE billed_period = ?1 AND"
                           " tenant_id = ?2 AND (?3 = '' OR key_id = ?3)"
                           " GROUP BY day, model ORDER BY day, model",
                           "ttt", period, tenant, key_id ? key_id : "");
    int rc;
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            fr_usage_agg *na = realloc(agg, cap * sizeof *na);
            if (!na) {
                st = FR_E_NOMEM;
                break;
            }
            agg = na;
        }
        fr_usage_agg *a = &agg[n++];
        a->day = sqlite3_column_int(q, 0);
        snprintf(a->model, sizeof a->model, "%s", col_text(q, 1));
        for (int k = 0; k < FR_BILL_KINDS; k++)
            a->qty[k] = sqlite3_column_int64(q, k + 2);
        a->unknown_calls = sqlite3_column_int64(q, FR_BILL_KINDS + 2);
    }
    if (!q || (st == FR_OK && rc != SQLITE_DONE)) {
        /* SQLite's sum() reports integer overflow as an error rather than wrapping. */
        snprintf(err, errlen, "usage query failed: %s", sqlite3_errmsg(s->db));
        st = FR_E_INVALID;
    }
    sqlite3_finalize(q);
    int closed = closed_locked(s, period);
    pthread_mutex_unlock(&s->mu);
    if (st == FR_OK)
        st = fr__bill_invoice(cards, n_cards, agg, n, inv, err, errlen);
    if (st == FR_OK) {
        snprintf(inv->tenant, sizeof inv->tenant, "%s", tenant);
        snprintf(inv->period, sizeof inv->period, "%s", period);
        inv->closed = closed;
    }
    free(agg);
    free_cards(cards, n_cards);
    return st;
}

fr_status fr__cp_store_period_tenants(fr_cp_store *s, const char *period, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s,
                           "SELECT DISTINCT tenant_id FROM usage_events WHERE billed_period = ?"
                           " ORDER BY tenant_id",
                           "t", period);
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        char **ni = realloc(*ids, (*n + 1) * sizeof *ni);
        if (!ni)
            break;
        *ids = ni;
        ni[(*n)++] = strdup(col_text(q, 0));
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return FR_OK;
}

fr_status fr__cp_store_period_close(fr_cp_store *s, const char *period, int64_t *closed_at)
{
    pthread_mutex_lock(&s->mu);
    int64_t now = now_s();
    int rc = run1(prep(s, "INSERT OR IGNORE INTO closed_periods VALUES (?, ?)", "ti", period, now));
    sqlite3_stmt *q = prep(s, "SELECT closed_at FROM closed_periods WHERE period = ?", "t", period);
    *closed_at = q && sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : now;
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE && !closed_locked(s, period)) {
        char(*nc)[8] = realloc(s->closed, (s->n_closed + 1) * sizeof *nc);
        if (nc) {
            s->closed = nc;
            snprintf(s->closed[s->n_closed++], 8, "%s", period);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc == SQLITE_DONE ? FR_OK : FR_E_IO;
}

int fr__cp_store_period_closed(fr_cp_store *s, const char *period)
{
    pthread_mutex_lock(&s->mu);
    int c = closed_locked(s, period);
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* ---- SLA ------------------------------------------------------------------------------- */

fr_status fr__cp_store_sla(fr_cp_store *s, int64_t from, int64_t to, fr_cp_sla_sum *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s,
                           "SELECT count(*), IFNULL(sum(requests), 0), IFNULL(sum(errors), 0),"
                           " IFNULL(sum(p50_ms * requests), 0), IFNULL(max(p99_ms), 0),"
                           " IFNULL(min(window_start), 0), IFNULL(max(window_end), 0)"
                           " FROM sla_reports WHERE window_end >= ? AND window_end < ?",
                           "ii", from, to);
    fr_status st = FR_E_IO;
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        out->reports = sqlite3_column_int64(q, 0);
        out->requests = sqlite3_column_int64(q, 1);
        out->errors = sqlite3_column_int64(q, 2);
        out->p50_ms = out->requests ? sqlite3_column_int64(q, 3) / out->requests : 0;
        out->p99_ms = sqlite3_column_int64(q, 4);
        out->first_start = sqlite3_column_int64(q, 5);
        out->last_end = sqlite3_column_int64(q, 6);
        st = FR_OK;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- limits (issue 26) ------------------------------------------------------------------- */

static int limits_owner_exists(fr_cp_store *s, int tenant, const char *id)
{
    sqlite3_stmt *q = prep(s,
                           tenant ? "SELECT 1 FROM tenants WHERE id = ?"
                                  : "SELECT 1 FROM api_keys WHERE id = ? AND kind = 'tenant'",
                           "t", id);
    int found = q && sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

char *fr__cp_store_limits_get(fr_cp_store *s, int tenant, const char *id, int *exists)
{
    pthread_mutex_lock(&s->mu);
    *exists = limits_owner_exists(s, tenant, id);
    sqlite3_stmt *q = prep(s,
                           tenant ? "SELECT doc FROM tenant_limits WHERE tenant_id = ?"
                                  : "SELECT doc FROM key_limits WHERE key_id = ?",
                           "t", id);
    char *doc = q && sqlite3_step(q) == SQLITE_ROW ? strdup(col_text(q, 0)) : NULL;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return doc;
}

fr_status fr__cp_store_limits_set(fr_cp_store *s, int tenant, const char *id, const char *doc)
{
    pthread_mutex_lock(&s->mu);
    fr_status st = FR_E_NOT_FOUND;
    if (limits_owner_exists(s, tenant, id))
        st = run1(prep(s,
                       tenant ? "INSERT OR REPLACE INTO tenant_limits VALUES (?, ?, ?)"
                              : "INSERT OR REPLACE INTO key_limits VALUES (?, ?, ?)",
                       "tti", id, doc, now_s())) == SQLITE_DONE
                 ? FR_OK
                 : FR_E_IO;
    pthread_mutex_unlock(&s->mu);
    return st;
}
