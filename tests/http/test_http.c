/* The HTTP server module (core/http): listening addresses (IPv4, IPv6, host names), the
 * error-code table and the README's table of it, error replies, TLS set-up from the
 * environment, servers started on IPv4 and IPv6.
 *
 * `tests/test_http --error-table` prints the README's table from core/http/http_errors.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "base/fileio.h"
#include "http/http.h"
#include "fr_test.h"

/* ---- addresses ------------------------------------------------------------------------- */

static void want_addr(const char *text, int family, const char *ip, unsigned port)
{
    fr_http_addr a;
    const char *why = NULL;
    int rc = fr__http_addr_parse(text, &a, &why);
    if (rc != 0)
        fprintf(stderr, "\n%s: %s\n", text, why);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(a.sa.ss_family, family);
    CU_ASSERT_EQUAL(fr__http_addr_port(&a), port);
    char got[INET6_ADDRSTRLEN] = "";
    if (family == AF_INET6) {
        CU_ASSERT_EQUAL(a.len, sizeof(struct sockaddr_in6));
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a.sa)->sin6_addr, got, sizeof got);
    } else {
        CU_ASSERT_EQUAL(a.len, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &((struct sockaddr_in *)&a.sa)->sin_addr, got, sizeof got);
    }
    if (ip)
        ASSERT_STR(got, ip);
}

static void test_addr_ok(void)
{
    want_addr(":8080", AF_INET, "0.0.0.0", 8080);
    want_addr("0.0.0.0:1", AF_INET, "0.0.0.0", 1);
    want_addr("127.0.0.1:0", AF_INET, "127.0.0.1", 0);
    want_addr("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);
    want_addr("localhost:2112", AF_INET, "127.0.0.1", 2112);
    want_addr("[::1]:8080", AF_INET6, "::1", 8080);
    want_addr("[::]:0", AF_INET6, "::", 0);
    want_addr("[fe80::1:2]:443", AF_INET6, "fe80::1:2", 443);
    want_addr("[::ffff:127.0.0.1]:80", AF_INET6, "::ffff:127.0.0.1", 80);
}

static void test_addr_host_name(void)
{
    /* A host name resolves through the resolver (here /etc/hosts: ip6-localhost and
     * localhost are special-cased or listed on every Debian system; accept either family). */
    fr_http_addr a;
    const char *why;
    char host[256];
    if (gethostname(host, sizeof host - 8) != 0)
        return;
    strcat(host, ":9");
    if (fr__http_addr_parse(host, &a, &why) != 0) {
        fprintf(stderr, "\n(own host name %s does not resolve here: skipped)\n", host);
        return;
    }
    CU_ASSERT(a.sa.ss_family == AF_INET || a.sa.ss_family == AF_INET6);
    CU_ASSERT_EQUAL(fr__http_addr_port(&a), 9);
}

static void test_addr_bad(void)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"8080", "expected HOST:PORT"},
        {"127.0.0.1:", "expected HOST:PORT"},
        {"", "expected HOST:PORT"},
        {"127.0.0.1:65536", "the port must be"},
        {"127.0.0.1:-1", "the port must be"},
        {"127.0.0.1:80x", "the port must be"},
        {":+80", "the port must be"},
        {"::1:8080", "in brackets"},
        {"[::1:8080", "in brackets"},
        {"[]:8080", "in brackets"},
        {"[not-v6]:8080", "not an IPv6 address"},
        {"[127.0.0.1]:80", "not an IPv6 address"},
        {"no-such-host.invalid:80", "does not resolve"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_http_addr a;
        const char *why = NULL;
        int rc = fr__http_addr_parse(cases[i].text, &a, &why);
        if (rc == 0)
            fprintf(stderr, "\n\"%s\" was accepted\n", cases[i].text);
        CU_ASSERT_EQUAL(rc, -1);
        ASSERT_CONTAINS(why, cases[i].why);
    }
    const char *why = NULL;
    fr_http_addr a;
    CU_ASSERT_EQUAL(fr__http_addr_parse(NULL, &a, &why), -1);
}

static void test_addr_format(void)
{
    fr_http_addr a;
    const char *why;
    char buf[80];
    CU_ASSERT_EQUAL_FATAL(fr__http_addr_parse("[::1]:0", &a, &why), 0);
    fr__http_addr_format(&a, 8080, buf, sizeof buf);
    ASSERT_STR(buf, "[::1]:8080");
    CU_ASSERT_EQUAL_FATAL(fr__http_addr_parse(":0", &a, &why), 0);
    fr__http_addr_format(&a, 80, buf, sizeof buf);
    ASSERT_STR(buf, "0.0.0.0:80");
}

/* ---- error codes ----------------------------------------------------------------------- */

/* The README's table, generated from the X-macro list. */
static char *error_table(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "| code | status | meaning |\n| --- | --- | --- |\n");
    for (int e = 0; e < FR_HE_COUNT_; e++)
        fprintf(f, "| `%s` | %d | %s |\n", fr__http_error_code((fr_http_error)e),
                fr__http_error_status((fr_http_error)e), fr__http_error_meaning((fr_http_error)e));
    fclose(f);
    return buf;
}

static void test_error_table(void)
{
    for (int e = 0; e < FR_HE_COUNT_; e++) {
        const char *code = fr__http_error_code((fr_http_error)e);
        int st = fr__http_error_status((fr_http_error)e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(code);
        CU_ASSERT(st >= 400 && st <= 599);
        CU_ASSERT(strlen(fr__http_error_meaning((fr_http_error)e)) > 0);
        for (const char *p = code; *p; p++)
            CU_ASSERT((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int o = 0; o < e; o++)
            CU_ASSERT(strcmp(code, fr__http_error_code((fr_http_error)o)) != 0);
    }
    /* One vocabulary: the control plane's old name for 413 is gone. */
    CU_ASSERT_EQUAL(fr__http_error_status(FR_HE_PAYLOAD_TOO_LARGE), 413);
    ASSERT_STR(fr__http_error_code(FR_HE_PAYLOAD_TOO_LARGE), "payload_too_large");
}

/* The README holds the generated table between two marker lines. */
static void test_readme_table(void)
{
    const char *src = getenv("FR_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/README.md", src ? src : ".");
    char *readme = fr__file_read(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    const char *begin = "<!-- error-codes: begin", *end = "<!-- error-codes: end -->";
    char *b = strstr(readme, begin), *e = b ? strstr(b, end) : NULL;
    if (!b || !e)
        fprintf(stderr, "\n%s: no lines \"%s ...\" and \"%s\"\n", path, begin, end);
    CU_ASSERT_FATAL(b && e);
    b = strchr(b, '\n') + 1;
    *e = '\0';
    char *want = error_table();
    if (strcmp(b, want) != 0)
        fprintf(stderr,
                "\nREADME.md's table of error codes differs from core/http/http_errors.h; "
                "`tests/test_http --error-table` prints it:\n%s",
                want);
    CU_ASSERT_STRING_EQUAL(b, want);
    free(want);
    free(readme);
}

static void test_reply_error(void)
{
    fr_reply r = {0};
    fr__reply_error(&r, FR_HE_PAYLOAD_TOO_LARGE, "the request body exceeds %d bytes", 10);
    CU_ASSERT_EQUAL(r.status, 413);
    ASSERT_STR(r.body, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"the request body "
                       "exceeds 10 bytes\"}}");
    /* A second error replaces the first (its body is freed). */
    fr__reply_error(&r, FR_HE_NOT_FOUND, "no route");
    CU_ASSERT_EQUAL(r.status, 404);
    ASSERT_CONTAINS(r.body, "\"not_found\"");
    free(r.body);
}

/* ---- TLS set-up and servers -------------------------------------------------------------- */

static void test_tls_from_env(void)
{
    fr_http_tls t;
    char err[256] = "";
    unsetenv("FRT_TLS_ENABLED");
    CU_ASSERT_EQUAL(fr__http_tls_from_env(&t, "FRT", err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.enabled, 0);
    setenv("FRT_TLS_ENABLED", "yes", 1);
    unsetenv("FRT_TLS_CERT_FILE");
    CU_ASSERT_EQUAL(fr__http_tls_from_env(&t, "FRT", err, sizeof err), -1);
    ASSERT_STR(err, "FRT_TLS_CERT_FILE (not set): required");
    setenv("FRT_TLS_CERT_FILE", "/nonexistent/cert.pem", 1);
    CU_ASSERT_EQUAL(fr__http_tls_from_env(&t, "FRT", err, sizeof err), -1);
    ASSERT_CONTAINS(err, "FRT_TLS_CERT_FILE /nonexistent/cert.pem: No such file");
    /* Any readable file will do here: the PEM is checked when a server starts. */
    char path[4096];
    const char *src = getenv("FR_SRCDIR");
    snprintf(path, sizeof path, "%s/README.md", src ? src : ".");
    setenv("FRT_TLS_CERT_FILE", path, 1);
    setenv("FRT_TLS_KEY_FILE", path, 1);
    unsetenv("FRT_TLS_CA_FILE");
    setenv("FRT_TLS_REQUIRE_CLIENT_CERT", "1", 1);
    CU_ASSERT_EQUAL(fr__http_tls_from_env(&t, "FRT", err, sizeof err), -1);
    ASSERT_STR(err, "FRT_TLS_REQUIRE_CLIENT_CERT needs a readable FRT_TLS_CA_FILE");
    CU_ASSERT_PTR_NULL(t.cert); /* freed on failure */
    setenv("FRT_TLS_CA_FILE", path, 1);
    CU_ASSERT_EQUAL_FATAL(fr__http_tls_from_env(&t, "FRT", err, sizeof err), 0);
    CU_ASSERT(t.enabled && t.require_client_cert && t.cert && t.key && t.ca);
    fr__http_tls_free(&t);
    CU_ASSERT_PTR_NULL(t.ca);
    unsetenv("FRT_TLS_ENABLED");
}

static enum MHD_Result answer_teapot(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version, const char *upload,
                                     size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    (void)con_cls;
    fr_reply r = {0};
    fr__reply_error(&r, FR_HE_NOT_FOUND, "nothing here");
    r.allow = "GET";
    return fr__http_send(c, &r);
}

/* Starts a server on `addr` (port 0), checks its URL's form and stops it; returns 0, or
 * -1 when the address cannot be bound here. */
static int start_on(const char *addr, const char *url_prefix)
{
    fr_http_addr a;
    const char *why;
    CU_ASSERT_EQUAL_FATAL(fr__http_addr_parse(addr, &a, &why), 0);
    fr_http_server_config cfg = {.addr = &a, .threads = 2, .handler = answer_teapot};
    struct MHD_Daemon *d = fr__http_start(&cfg);
    if (!d)
        return -1;
    char url[128];
    fr__http_url(d, &a, 0, url, sizeof url);
    CU_ASSERT_NSTRING_EQUAL(url, url_prefix, strlen(url_prefix));
    unsigned port = (unsigned)atoi(strrchr(url, ':') + 1);
    CU_ASSERT(port > 0 && port < 65536);
    MHD_stop_daemon(d);
    return 0;
}

static void test_start(void)
{
    CU_ASSERT_EQUAL(start_on("127.0.0.1:0", "http://127.0.0.1:"), 0);
    if (start_on("[::1]:0", "http://[::1]:") != 0)
        fprintf(stderr, "\n(no IPv6 loopback here: [::1] skipped)\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--error-table") == 0) {
        char *t = error_table();
        fputs(t ? t : "", stdout);
        free(t);
        return t ? 0 : 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("http", NULL, NULL);
    CU_add_test(s, "addresses: IPv4, IPv6, localhost, :PORT", test_addr_ok);
    CU_add_test(s, "addresses: a host name", test_addr_host_name);
    CU_add_test(s, "addresses: malformed ones say why", test_addr_bad);
    CU_add_test(s, "addresses: formatted back", test_addr_format);
    CU_add_test(s, "error codes: one table, unique codes", test_error_table);
    CU_add_test(s, "error codes: README.md's table is the table", test_readme_table);
    CU_add_test(s, "error replies: code, status and message", test_reply_error);
    CU_add_test(s, "TLS from PREFIX_TLS_*: what is missing is named", test_tls_from_env);
    CU_add_test(s, "servers start on IPv4 and IPv6 and say where", test_start);
    return fr_test_run_all();
}
