/* Chat completion requests translated from their text (core/serve/gateway_request.c)
 * give the bytes and fields the tree way gives (fr__gw_translate_request, written as serve
 * writes a run's input), for the common requests; and every request the text way does not
 * take (other fields, content parts, tool messages, invalid values, malformed bodies) is
 * left to the tree way, which answers it as before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "base/json_parse.h"
#include "fr_test.h"
#include "serve/gateway.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Taken from their text. */
static const char *const common[] = {
    "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"say something short\"}]}",
    " {\n \"model\" : \"chat\" , \"messages\" : [ { \"content\" : \"hi\" , \"role\" : \"user\" } ] "
    "}\n",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"developer\",\"content\":\"\\u00e9\\n\\\"x\\\"\\/\"},{\"role\":\"user\","
    "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"system\","
    "\"content\":\"later\"},{\"role\":\"user\",\"content\":\"\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"system\","
    "\"content\":\"second\"},{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"user\","
    "\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":"
    "[{\"role\":\"user\",\"content\":\"x\\u0000y \\u0001 \\t tab 😀\"}]}",
    "{\"model\":\"c\",\"stream\":true,\"stream_options\":{},\"messages\":[{\"role\":\"user\","
    "\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream\":false,\"stream_options\":null,\"messages\":[{\"role\":\"user\","
    "\"content\":\"x\"}],\"max_tokens\":64,\"temperature\":0.7,\"top_p\":1,\"user\":\"u-1\"}",
    "{\"model\":\"c\",\"stream\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    "\"max_completion_tokens\":5,\"max_tokens\":null,\"temperature\":-0.0,\"top_p\":1e-1}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2,"
    "\"top_p\":0,\"user\":null,\"max_completion_tokens\":null}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.50,"
    "\"top_p\":-0}",
    "{\"model\":\"first\",\"model\":\"last\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
    "\"content\":\"y\"}]}",
};

/* Left to the tree way (answered, or refused, as before). */
static const char *const others[] = {
    "",
    "not json",
    "[1]",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} trailing",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":3}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"typo\":1}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
    "\"text\":\"x\"}]}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":\"1\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"refusal\":null}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"us\\u0065r\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"a\\u0000b\"},"
    "{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud83d\\ude00\"}]}",
    "{\"model\":\"c\",\"messages\":[]}",
    "{\"model\":\"c\",\"messages\":{}}",
    "{\"model\":\"c\"}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\\u0068at\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":"
    "\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream\":true,\"stream_options\":{\"include_usage\":1},\"messages\":"
    "[{\"role\":\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"stream\":true,\"stream_options\":{\"other\":true},\"messages\":[{\"role\":"
    "\"user\",\"content\":\"x\"}]}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2.0}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,"
    "\"max_completion_tokens\":5}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    "\"max_tokens\":99999999999999999999}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2.01}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"1\"}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1e999}",
    "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":5}",
};

/* The tree way: parsed as serve parses a body, translated, written as serve writes the
 * run's input; NULL when refused. */
static char *tree_way(const char *body, fr_gw_request *rq, int *refused_status)
{
    json_object *o = NULL;
    size_t at;
    const char *why;
    *refused_status = 0;
    if (fr__json_parse_whole(body, strlen(body), 64, &o, &at, &why) != 0 ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        *refused_status = 400;
        return NULL;
    }
    fr_reply out = {0};
    json_object *req = fr__gw_translate_request(o, rq, &out);
    json_object_put(o);
    if (!req) {
        *refused_status = out.status;
        free(out.body);
        return NULL;
    }
    char *text = strdup(json_object_to_json_string_ext(req, FLAGS));
    json_object_put(req);
    return text;
}

static void test_common(void)
{
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
        fr_gw_request fast, tree;
        fr_bytebuf input;
        int status;
        int rc = fr__gw_translate_text(common[i], strlen(common[i]), &fast, &input);
        if (rc != 0)
            fprintf(stderr, "not taken from its text: %s\n", common[i]);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        char *want = tree_way(common[i], &tree, &status);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        if (strcmp(input.data, want) != 0)
            fprintf(stderr, "%s:\n  text %s\n  tree %s\n", common[i], input.data, want);
        CU_ASSERT_STRING_EQUAL(input.data, want);
        CU_ASSERT_STRING_EQUAL(fast.model, tree.model);
        CU_ASSERT_EQUAL(fast.stream, tree.stream);
        CU_ASSERT_EQUAL(fast.include_usage, tree.include_usage);
        free(want);
        free(input.data);
    }
}

static void test_others(void)
{
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        fr_gw_request rq;
        fr_bytebuf input = {.data = (char *)"untouched"};
        int rc = fr__gw_translate_text(others[i], strlen(others[i]), &rq, &input);
        if (rc != -1)
            fprintf(stderr, "taken from its text: %s\n", others[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(input.data); /* nothing to free */
    }
    /* Some of them the tree way takes: the text way only left them to it. */
    fr_gw_request rq;
    int status;
    char *t = tree_way(others[5], &rq, &status); /* n: 1 */
    CU_ASSERT_PTR_NOT_NULL(t);
    free(t);
    t = tree_way(others[16], &rq, &status); /* a leading system text with a NUL */
    CU_ASSERT_PTR_NOT_NULL(t);
    free(t);
    t = tree_way(others[20], &rq, &status); /* no messages: refused */
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_EQUAL(status, 400);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gateway_request", NULL, NULL);
    CU_add_test(s, "common requests: the tree's bytes from their text", test_common);
    CU_add_test(s, "the others are left to the tree way", test_others);
    return fr_test_run_all();
}
