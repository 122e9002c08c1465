/* Wire fidelity of the provider plugins: the exact bytes each vendor's request body holds
 * for a set of awkward normalized requests (tests/data/providers/wire_requests.jsonl),
 * and the exact normalized response for a set of awkward vendor answers
 * (wire_answers.txt), compared with tests/data/providers/wire_golden.txt.
 *
 * Traces record request bodies as bytes and replays compare them, so a change to how a
 * plugin writes JSON must not change a single byte of them: the golden file was written
 * by the json-c implementation of the builders and parsers, and every later one must
 * agree with it.  FR_WIRE_GOLDEN=write rewrites the golden file instead of comparing
 * (only after a deliberate change of the wire format; say so in the commit).
 *
 * Exit status: 0 when every record matched, 1 otherwise. */
#include <CUnit/Basic.h>

#include "plugin_util.h"

#include "provider_host.h"
#include "fr_test.h"

static const char *const vendors[] = {"openai", "anthropic", "gemini"};

/* A minimal successful answer per vendor, whole and streamed. */
static const char *const ok_answer[][2] = {
    {"{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}",
     "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n"},
    {"{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}",
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
     "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
    {"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":"
     "\"STOP\"}]}\n\n"},
};

static const char *const kv[] = {"model",       "cfg-model", "base_url", "http://h.test/base/",
                                 "api_key_env", "TEST_KEY",  NULL};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    frk_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        frk_buf_append(&b, chunk, n);
    fclose(f);
    return b.data ? b.data : calloc(1, 1);
}

static void path_of(char *out, size_t size, const char *name)
{
    const char *src = getenv("FR_SRCDIR");
    snprintf(out, size, "%s/tests/data/providers/%s", src ? src : ".", name);
}

/* The next line of *pos that is not empty or a "#" comment, NUL-terminated in place. */
static char *next_line(char **pos)
{
    while (**pos) {
        char *line = *pos, *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            *pos = nl + 1;
        } else {
            *pos = line + strlen(line);
        }
        if (*line && *line != '#')
            return line;
    }
    return NULL;
}

static void record(frk_buf *out, const char *what, fr_status st, const fr_call *c, const char *resp)
{
    char head[256];
    snprintf(head, sizeof head, "== %s\nstatus %s\n", what, frk_status_name(st));
    frk_buf_append(out, head, strlen(head));
    const char *fields[][2] = {{"url ", c->url},
                               {"body ", c->body},
                               {"response ", resp},
                               {"chunks ", c->chunks},
                               {"error ", c->error}};
    for (size_t i = 0; i < PU_COUNT(fields); i++) {
        if (!fields[i][1] || !*fields[i][1])
            continue;
        frk_buf_append(out, fields[i][0], strlen(fields[i][0]));
        frk_buf_append(out, fields[i][1], strlen(fields[i][1]));
        frk_buf_lit(out, "\n");
    }
}

/* Every request to every vendor, whole and streamed; then every answer. */
static void run_cases(frk_buf *out)
{
    char path[1024];
    path_of(path, sizeof path, "wire_requests.jsonl");
    char *requests = read_file(path);
    path_of(path, sizeof path, "wire_answers.txt");
    char *answers = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(requests);
    CU_ASSERT_PTR_NOT_NULL_FATAL(answers);
    env_name = "TEST_KEY";
    env_value = "sk-wire-key";
    for (size_t v = 0; v < PU_COUNT(vendors); v++) {
        provider p;
        ASSERT_STATUS(provider_open(&p, vendors[v], kv), FR_OK);
        char *copy = strdup(requests), *pos = copy, *line;
        for (int n = 1; (line = next_line(&pos)); n++) {
            for (int stream = 0; stream < 2; stream++) {
                fr_call *c = call_new(200, ok_answer[v][stream]);
                const char *resp = NULL;
                fr_status st = run(&p, c, line, stream, &resp);
                char what[128];
                snprintf(what, sizeof what, "%s request %d%s", vendors[v], n,
                         stream ? " streamed" : "");
                record(out, what, st, c, NULL);
                call_free(c);
            }
        }
        free(copy);
        copy = strdup(answers);
        pos = copy;
        for (int n = 1; (line = next_line(&pos));) {
            char vendor[32];
            int stream = 0, used = 0;
            if (sscanf(line, "%31s %d %n", vendor, &stream, &used) < 2 ||
                strcmp(vendor, vendors[v]) != 0)
                continue;
            frk_buf body = {0};
            for (const char *s = line + used; *s;) {
                if (strncmp(s, "<NL>", 4) == 0) {
                    frk_buf_lit(&body, "\n");
                    s += 4;
                } else {
                    frk_buf_append(&body, s++, 1);
                }
            }
            fr_call *c = call_new(200, body.data);
            c->split = stream ? 5 : 0;
            const char *resp = NULL;
            fr_status st = run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                               stream, &resp);
            char what[128];
            snprintf(what, sizeof what, "%s answer %d%s", vendors[v], n++,
                     stream ? " streamed" : "");
            c->url[0] = c->body[0] = '\0'; /* the request is the same every time */
            record(out, what, st, c, resp);
            call_free(c);
            frk_buf_free(&body);
        }
        free(copy);
        provider_close(&p);
    }
    free(requests);
    free(answers);
}

static void test_wire_golden(void)
{
    frk_buf got = {0};
    run_cases(&got);
    CU_ASSERT_FATAL(!got.oom && got.data);
    char path[1024];
    path_of(path, sizeof path, "wire_golden.txt");
    const char *mode = getenv("FR_WIRE_GOLDEN");
    if (mode && strcmp(mode, "write") == 0) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fwrite(got.data, 1, got.len, f);
        fclose(f);
        fprintf(stderr, "\nwrote %s (%zu bytes)\n", path, got.len);
        frk_buf_free(&got);
        return;
    }
    char *want = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    /* Compared record by record, so a failure shows the case that changed. */
    char *g = got.data, *w = want;
    int shown = 0;
    while (*g || *w) {
        char *gn = strstr(g + 1, "\n== "), *wn = strstr(w + 1, "\n== ");
        size_t gl = gn ? (size_t)(gn - g) + 1 : strlen(g),
               wl = wn ? (size_t)(wn - w) + 1 : strlen(w);
        if ((gl != wl || memcmp(g, w, gl) != 0) && shown++ < 5)
            fprintf(stderr, "\n--- golden:\n%.*s--- now:\n%.*s", (int)wl, w, (int)gl, g);
        CU_ASSERT(gl == wl && memcmp(g, w, gl) == 0);
        g += gl;
        w += wl;
    }
    free(want);
    frk_buf_free(&got);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("provider wire fidelity", NULL, NULL);
    CU_add_test(s, "request bodies and normalized responses match the golden file",
                test_wire_golden);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
