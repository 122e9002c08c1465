/* `fluxroute probe URL`: one GET, exit 0 on a 2xx answer.  For container HEALTHCHECKs
 * and exec probes in images without curl (deploy/Dockerfile).  Exit 1 for anything else
 * (Docker's "unhealthy"; its 2 is reserved, and only a usage error gives it here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/duration.h"
#include "cli/cli.h"

const char fr__probe_usage[] =
    "usage: fluxroute probe URL [--timeout D] [--cacert FILE] [--cert FILE --key FILE]\n"
    "\n"
    "GETs URL once (http:// or https://; redirects are not followed) and exits 0 when the\n"
    "answer is 2xx, printing `URL: HTTP CODE`.  For a container HEALTHCHECK or an exec\n"
    "probe where there is no curl, e.g. fluxroute probe http://127.0.0.1:9090/healthz\n"
    "(a --metrics-addr listener) or https://127.0.0.1:8080/readyz.\n"
    "\n"
    "  --timeout D     give up after D (default 5s): connecting, TLS and the answer\n"
    "  --cacert FILE   trust the CA certificates in FILE (PEM) for https:// (default:\n"
    "                  the system's); the server's name must match its certificate\n"
    "  --cert FILE     a client certificate (PEM) for listeners that require one\n"
    "                  (ROUTER_TLS_REQUIRE_CLIENT_CERT); needs --key\n"
    "  --key FILE      its private key (PEM)\n"
    "\n"
    "Exit: 0 a 2xx answer, 1 anything else (another status, a redirect, no connection,\n"
    "a timeout, a TLS failure: the reason is printed on stderr with the URL, its password\n"
    "masked), 2 usage error.\n";

/* The answer's body is not needed: read and dropped. */
static size_t discard(char *p, size_t size, size_t n, void *cls)
{
    (void)p, (void)cls;
    return size * n;
}

/* url with any password replaced by ***, into out. */
static void mask_url(const char *url, char *out, size_t size)
{
    snprintf(out, size, "%s", url);
    CURLU *u = curl_url();
    char *pw = NULL, *text = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK && pw &&
        curl_url_set(u, CURLUPART_PASSWORD, "***", 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &text, 0) == CURLUE_OK)
        snprintf(out, size, "%s", text);
    curl_free(pw);
    curl_free(text);
    curl_url_cleanup(u);
}

int fr__cmd_probe(const cli_command *cmd, int argc, char **argv)
{
    const char *timeout_arg = NULL, *cacert = NULL, *cert = NULL, *key = NULL, *pos[1];
    size_t n_pos;
    const cli_opt opts[] = {{"--timeout", 1, &timeout_arg, NULL, NULL},
                            {"--cacert", 1, &cacert, NULL, NULL},
                            {"--cert", 1, &cert, NULL, NULL},
                            {"--key", 1, &key, NULL, NULL},
                            {NULL, 0, NULL, NULL, NULL}};
    int rc = fr__cli_parse(cmd, argc, argv, opts, pos, 1, &n_pos);
    if (rc != 0)
        return rc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    if (n_pos != 1) {
        fr__cli_error(cmd, "give the URL to probe (see fluxroute probe --help)");
        return FR_EXIT_USAGE;
    }
    const char *url = pos[0];
    char shown[1024];
    mask_url(url, shown, sizeof shown);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fr__cli_error(cmd, "%s: not an http:// or https:// URL", shown);
        return FR_EXIT_USAGE;
    }
    int64_t timeout_us = 5000000;
    const char *why;
    if (timeout_arg &&
        (fr__duration_parse(timeout_arg, &timeout_us, &why) != 0 || timeout_us <= 0)) {
        fr__cli_error(cmd, "--timeout %s: not a positive duration (e.g. 2s, 500ms)", timeout_arg);
        return FR_EXIT_USAGE;
    }
    if (!cert != !key) {
        fr__cli_error(cmd, "--cert and --key go together (a client certificate and its key)");
        return FR_EXIT_USAGE;
    }
    if ((cacert || cert) && strncmp(url, "https://", 8) != 0) {
        fr__cli_error(cmd, "%s: --cacert, --cert and --key need an https:// URL", shown);
        return FR_EXIT_USAGE;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fr__cli_error(cmd, "%s: cannot start libcurl (out of memory)", shown);
        return FR_EXIT_FAILED;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    long ms = (long)((timeout_us + 999) / 1000);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "fluxroute-probe");
    /* A proxy from the environment would probe something else. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
    if (cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    char *location = NULL;
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location);
    char where[1024] = "";
    if (location)
        mask_url(location, where, sizeof where);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        fr__cli_error(cmd, "%s: %s", shown, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return FR_EXIT_FAILED;
    }
    if (status < 200 || status > 299) {
        if (status >= 300 && status < 400 && where[0])
            fr__cli_error(cmd, "%s: HTTP %ld, a redirect to %s (not followed)", shown, status,
                          where);
        else
            fr__cli_error(cmd, "%s: HTTP %ld, not 2xx", shown, status);
        return FR_EXIT_FAILED;
    }
    printf("%s: HTTP %ld\n", shown, status);
    return FR_EXIT_OK;
}
