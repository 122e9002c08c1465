/* The file lease backend: one file per key in COORDINATION_DIR, holding the holder id,
 * the expiry (wall clock, so any process on the machine can judge it) and the key's
 * fencing counter.  Every read-decide-write happens under flock(LOCK_EX) on that file,
 * so processes exclude each other; the record is rewritten in place with one pwrite of
 * a fixed-size block and never truncated, so a killed writer cannot leave a half file
 * and the counter never goes backwards.  Files are never deleted (that would reset the
 * counter). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "lease/lease.h"

#define RECORD_SIZE 256
#define MAX_NAME    200 /* file names stay well below NAME_MAX (255) */

typedef struct file_impl {
    char *dir;
} file_impl;

int fr__lease_file_name(const char *key, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *suffix = ".lease";
    size_t n = 0, suffix_len = strlen(suffix);
    if (size < MAX_NAME + 1)
        return -1;
    const unsigned char *k = (const unsigned char *)key;
    int shortened = 0;
    for (size_t i = 0; k[i]; i++) {
        int plain = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                    (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-' ||
                    (k[i] == '.' && i > 0);
        if (n + 3 + 17 + suffix_len >= MAX_NAME) {
            shortened = 1;
            break;
        }
        if (plain) {
            out[n++] = (char)k[i];
        } else {
            out[n++] = '%';
            out[n++] = hex[k[i] >> 4];
            out[n++] = hex[k[i] & 15];
        }
    }
    if (shortened) {
        /* FNV-1a of the whole key keeps long keys apart. */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; k[i]; i++)
            h = (h ^ k[i]) * 1099511628211ULL;
        n += (size_t)snprintf(out + n, size - n, "~%016" PRIx64, h);
    }
    snprintf(out + n, size - n, "%s", suffix);
    return 0;
}

/* The on-disk record. */
typedef struct file_record {
    char holder[FR_LEASE_HOLDER_MAX]; /* "" when free */
    int64_t expires_wall;
    uint64_t counter;
} file_record;

/* Opens and locks the key's file.  Returns the fd, or -1 with err set. */
static int file_lock(const file_impl *f, const char *key, char *path, size_t path_size, char *err,
                     size_t err_size)
{
    char name[MAX_NAME + 1];
    fr__lease_file_name(key, name, sizeof name);
    snprintf(path, path_size, "%s/%s", f->dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_size, "lease file %s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            snprintf(err, err_size, "lease file %s: flock: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static fr_status file_read(int fd, const char *path, file_record *r, char *err, size_t err_size)
{
    char buf[RECORD_SIZE + 1];
    memset(r, 0, sizeof *r);
    ssize_t n = pread(fd, buf, RECORD_SIZE, 0);
    if (n < 0) {
        snprintf(err, err_size, "lease file %s: read: %s", path, strerror(errno));
        return FR_E_IO;
    }
    if (n == 0)
        return FR_OK; /* a new key */
    buf[n] = '\0';
    long long exp = 0;
    unsigned long long counter = 0;
    char holder[FR_LEASE_HOLDER_MAX];
    if (sscanf(buf, "fluxroute-lease v1\nholder %127s\nexpires_us %lld\nfencing %llu", holder, &exp,
               &counter) != 3) {
        /* Never start the counter again from 0 over a file we do not understand. */
        snprintf(err, err_size,
                 "lease file %s: not a fluxroute lease file (remove it only if no process uses "
                 "the key)",
                 path);
        return FR_E_IO;
    }
    if (strcmp(holder, "-") != 0)
        memcpy(r->holder, holder, sizeof r->holder);
    r->expires_wall = exp;
    r->counter = counter;
    return FR_OK;
}

static fr_status file_write(int fd, const char *path, const file_record *r, char *err,
                            size_t err_size)
{
    char buf[RECORD_SIZE];
    memset(buf, ' ', sizeof buf);
    int n = snprintf(
        buf, sizeof buf, "fluxroute-lease v1\nholder %s\nexpires_us %lld\nfencing %llu\n",
        r->holder[0] ? r->holder : "-", (long long)r->expires_wall, (unsigned long long)r->counter);
    if (n < 0 || n >= RECORD_SIZE) {
        snprintf(err, err_size, "lease file %s: record too long", path);
        return FR_E_INVALID;
    }
    buf[n] = ' '; /* snprintf's NUL: the padding keeps the size fixed */
    buf[RECORD_SIZE - 1] = '\n';
    if (pwrite(fd, buf, RECORD_SIZE, 0) != RECORD_SIZE) {
        snprintf(err, err_size, "lease file %s: write: %s", path, strerror(errno));
        return FR_E_IO;
    }
    return FR_OK;
}

static int holder_ok(const char *holder)
{
    size_t n = strlen(holder);
    if (n == 0 || n >= FR_LEASE_HOLDER_MAX || !strcmp(holder, "-"))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)holder[i] <= ' ')
            return 0;
    return 1;
}

static int file_held(const file_record *r, int64_t now, fr_lease_info *held)
{
    memset(held, 0, sizeof *held);
    if (!r->holder[0] || r->expires_wall <= now)
        return 0;
    memcpy(held->holder, r->holder, sizeof held->holder);
    held->token = r->counter;
    held->expires_in_us = r->expires_wall - now;
    return 1;
}

/* One locked read-decide-write.  op: 'a' acquire, 'r' renew, 'x' release. */
static fr_status file_op(fr_lease_backend *b, int op, const char *key, const char *holder,
                         uint64_t *token, int64_t ttl_us, fr_lease_info *held, char *err,
                         size_t err_size)
{
    if (!holder_ok(holder)) {
        snprintf(err, err_size, "lease %s: invalid holder id", key);
        return FR_E_INVALID;
    }
    char path[4096 + MAX_NAME + 2];
    int fd = file_lock(b->impl, key, path, sizeof path, err, err_size);
    if (fd < 0)
        return FR_E_IO;
    file_record r;
    fr_status st = file_read(fd, path, &r, err, err_size);
    int64_t now = fr__wall_us();
    if (st != FR_OK) {
        /* reported as is */
    } else if (op == 'a') {
        if (file_held(&r, now, held)) {
            st = FR_E_UNAVAILABLE;
        } else {
            snprintf(r.holder, sizeof r.holder, "%s", holder);
            r.expires_wall = now + ttl_us;
            *token = ++r.counter;
            st = file_write(fd, path, &r, err, err_size);
        }
    } else if (!file_held(&r, now, held) || strcmp(r.holder, holder) != 0 || r.counter != *token) {
        st = FR_E_LEASE_LOST;
    } else {
        memset(held, 0, sizeof *held);
        if (op == 'r') {
            r.expires_wall = now + ttl_us;
        } else {
            r.holder[0] = '\0';
            r.expires_wall = 0;
        }
        st = file_write(fd, path, &r, err, err_size);
    }
    close(fd); /* drops the lock */
    return st;
}

static fr_status file_acquire(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                              const char *holder, int64_t ttl_us, uint64_t *token,
                              fr_lease_info *held, char *err, size_t err_size)
{
    (void)c;
    return file_op(b, 'a', key, holder, token, ttl_us, held, err, err_size);
}

static fr_status file_renew(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                            const char *holder, uint64_t token, int64_t ttl_us, fr_lease_info *held,
                            char *err, size_t err_size)
{
    (void)c;
    return file_op(b, 'r', key, holder, &token, ttl_us, held, err, err_size);
}

static fr_status file_release(fr_lease_backend *b, fr_lease_conn *c, const char *key,
                              const char *holder, uint64_t token, fr_lease_info *held, char *err,
                              size_t err_size)
{
    (void)c;
    return file_op(b, 'x', key, holder, &token, 0, held, err, err_size);
}

static void file_destroy(fr_lease_backend *b)
{
    file_impl *f = b->impl;
    free(f->dir);
    free(f);
}

static const fr_lease_ops file_ops = {
    .acquire = file_acquire,
    .renew = file_renew,
    .release = file_release,
    .destroy = file_destroy,
};

/* mkdir -p, 0755 (less the umask). */
static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

fr_status fr__lease_file_open(fr_lease_backend *b, const char *dir, char *err, size_t err_size)
{
    file_impl *f = calloc(1, sizeof *f);
    if (!f || !(f->dir = strdup(dir)) || !(b->describe = malloc(strlen(dir) + 6))) {
        if (f)
            free(f->dir);
        free(f);
        snprintf(err, err_size, "out of memory");
        return FR_E_NOMEM;
    }
    sprintf(b->describe, "file %s", dir);
    struct stat sb;
    const char *why = NULL;
    if (!*dir || strlen(dir) > 4096)
        why = "invalid path";
    else if (mkdirs(f->dir) != 0 || stat(dir, &sb) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(sb.st_mode))
        why = "not a directory";
    if (why) {
        snprintf(err, err_size, "COORDINATION_DIR %s: %s", dir, why);
        free(f->dir);
        free(f);
        return FR_E_CONFIG;
    }
    b->ops = &file_ops;
    b->impl = f;
    return FR_OK;
}
