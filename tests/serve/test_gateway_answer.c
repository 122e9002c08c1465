/* The gateway's answers written without trees (core/serve/gateway_answer.c) are the bytes
 * json-c writes for the trees of gateway_openai.c: chat.completion objects and every kind
 * of chat.completion.chunk, for outputs with escapes, unicode, control characters, odd
 * usage and finish reasons; and the outputs it must leave to the tree way are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "serve/gateway.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static const char *const run_ids[] = {"0f8e2d1c-aaaa-4bbb-8ccc-123456789abc", "odd \"id\"\n/"};
static const char *const models[] = {"chat", "a \"quoted\"/route\\name\n\x01\x7f é"};

/* Outputs read without a tree. */
static const char *const readable[] = {
    "{\"text\":\"hello\",\"usage\":{\"input_tokens\":7,\"output_tokens\":6},\"model\":\"m\","
    "\"provider\":\"fake\",\"tool_calls\":[],\"finish_reason\":\"stop\"}",
    "{\"text\": \"a\\nb\\tc\\r\\\\d\\\"e\\/f\\b\\f\", \"finish_reason\": \"length\"}",
    "{\"text\":\"\\u0000\\u0001\\u001f\\u0020\\u007f\\u00e9\\u20ac\\u0022\\u005c\\u002f\"}",
    "{\"text\":\"raw é € 😀 / \\u00E9\",\"usage\":{\"input_tokens\":-3,\"output_tokens\":0}}",
    "{\"text\":\"\",\"tool_calls\":null}",
    "{\"text\":null,\"finish_reason\":\"max_tokens\"}",
    "{\"text\":42,\"finish_reason\":7}",
    "{}",
    "{\"finish_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1}}",
    "{\"finish_reason\":\"MAX_TOKENS\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2.5}}",
    "{\"finish_reason\":\"a-reason-far-longer-than-any-known-name-of-openai\"}",
    "{\"usage\":{\"input_tokens\":9223372036854775807,\"output_tokens\":0}}",
    "{\"usage\":{\"input_tokens\":\"7\",\"output_tokens\":1}}",
    "{\"usage\":[1,2]}",
    "{\"usage\":null}",
    "{\"text\":\"first\",\"text\":\"the last one wins\",\"usage\":{\"input_tokens\":1,"
    "\"output_tokens\":1,\"input_tokens\":5}}",
    " { \"text\" : \"spaces\" , \"tool_calls\" : [ ] } ",
    "{\"text\":\"nested \\\"text\\\": \\\"no\\\"\",\"x\":{\"text\":\"inner\"}}",
};

/* Outputs left to the tree way. */
static const char *const unreadable[] = {
    "\"just a string\"",
    "[1,2]",
    "{\"text\":\"x\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"f\",\"arguments\":{}}]}",
    "{\"te\\u0078t\":\"escaped name\"}",
    "{\"text\":\"x\",\"finish_reason\":\"st\\u006fp\"}",
    "{\"usage\":{\"input_tokens\":99999999999999999999,\"output_tokens\":1}}",
    "{\"usage\":{\"input_tokens\":9223372036854775807,\"output_tokens\":1}}",
    "{\"text\":\"x\"} trailing",
    "{\"text\":\"x\"",
};

static char *tree_text(json_object *o)
{
    char *s = strdup(json_object_to_json_string_ext(o, FLAGS));
    json_object_put(o);
    return s;
}

static void check_same(const char *what, const char *out, const char *fast, const char *tree)
{
    if (strcmp(fast, tree) != 0)
        fprintf(stderr, "%s of %s:\n  fast %s\n  tree %s\n", what, out, fast, tree);
    CU_ASSERT_STRING_EQUAL(fast, tree);
}

static void test_completion(void)
{
    for (size_t m = 0; m < 4; m++)
        for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
            const char *run_id = run_ids[m / 2];
            fr_gw_answer a;
            CU_ASSERT_EQUAL_FATAL(fr__gw_answer_scan(readable[i], strlen(readable[i]), &a), 0);
            fr_bytebuf b = {0};
            CU_ASSERT_EQUAL(fr__gw_completion_put(&b, run_id, 1796674837, models[m % 2], &a), 0);
            json_object *resp = json_tokener_parse(readable[i]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
            char *tree = tree_text(fr__gw_completion(run_id, 1796674837, models[m % 2], resp));
            check_same("completion", readable[i], b.data, tree);
            json_object_put(resp);
            free(tree);
            free(b.data);
        }
}

static void test_chunks(void)
{
    const char *tokens[] = {"", "plain", "a\"b\\c/d\n\t\x01\x1f é", "x\0y"};
    size_t token_len[] = {0, 5, 15, 3};
    for (size_t m = 0; m < 4; m++) {
        const char *model = models[m % 2], *run_id = run_ids[m / 2];
        fr_gw_envelope env;
        CU_ASSERT_EQUAL_FATAL(fr__gw_chunk_envelope(&env, run_id, 5, model), 0);
        /* The role chunk and the finish chunks. */
        json_object *delta = json_object_new_object();
        json_object_object_add(delta, "role", json_object_new_string("assistant"));
        json_object_object_add(delta, "content", json_object_new_string(""));
        json_object_object_add(delta, "refusal", NULL);
        char *tree = tree_text(fr__gw_chunk(run_id, 5, model, delta, NULL));
        fr_bytebuf b = {0};
        fr__gw_chunk_put(&b, &env, &(fr_gw_delta){.kind = FR_GW_DELTA_ROLE}, NULL);
        check_same("role chunk", model, b.data, tree);
        free(tree), free(b.data);
        const char *fins[] = {"stop", "length", "tool_calls"};
        for (size_t f = 0; f < 3; f++) {
            tree = tree_text(fr__gw_chunk(run_id, 5, model, json_object_new_object(), fins[f]));
            b = (fr_bytebuf){0};
            fr__gw_chunk_put(&b, &env, &(fr_gw_delta){.kind = FR_GW_DELTA_EMPTY}, fins[f]);
            check_same("finish chunk", fins[f], b.data, tree);
            free(tree), free(b.data);
        }
        /* Token chunks: bytes as they come from the vendor. */
        for (size_t t = 0; t < sizeof tokens / sizeof tokens[0]; t++) {
            delta = json_object_new_object();
            json_object_object_add(delta, "content",
                                   json_object_new_string_len(tokens[t], (int)token_len[t]));
            tree = tree_text(fr__gw_chunk(run_id, 5, model, delta, NULL));
            b = (fr_bytebuf){0};
            fr__gw_chunk_put(
                &b, &env,
                &(fr_gw_delta){.kind = FR_GW_DELTA_BYTES, .bytes = tokens[t], .len = token_len[t]},
                NULL);
            check_same("token chunk", tokens[t], b.data, tree);
            free(tree), free(b.data);
        }
        /* The text and usage chunks of every readable output. */
        for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
            fr_gw_answer a;
            CU_ASSERT_EQUAL_FATAL(fr__gw_answer_scan(readable[i], strlen(readable[i]), &a), 0);
            json_object *resp = json_tokener_parse(readable[i]), *text = NULL, *u = NULL;
            if (json_object_object_get_ex(resp, "text", &text) &&
                json_object_is_type(text, json_type_string)) {
                CU_ASSERT_PTR_NOT_NULL(a.text);
                delta = json_object_new_object();
                json_object_object_add(delta, "content", json_object_get(text));
                tree = tree_text(fr__gw_chunk(run_id, 5, model, delta, NULL));
                b = (fr_bytebuf){0};
                fr__gw_chunk_put(&b, &env, &(fr_gw_delta){.kind = FR_GW_DELTA_TEXT, .answer = &a},
                                 NULL);
                check_same("text chunk", readable[i], b.data, tree);
                free(tree), free(b.data);
                /* a non-empty string, as on_end decides it */
                CU_ASSERT_EQUAL(a.text_len > 2, json_object_get_string_len(text) > 0);
            } else {
                CU_ASSERT_PTR_NULL(a.text);
            }
            json_object *last = fr__gw_chunk(run_id, 5, model, NULL, NULL);
            json_object_object_add(last, "usage",
                                   json_object_object_get_ex(resp, "usage", &u) ? fr__gw_usage(u)
                                                                                : NULL);
            tree = tree_text(last);
            b = (fr_bytebuf){0};
            fr__gw_chunk_put(&b, &env, &(fr_gw_delta){.kind = FR_GW_DELTA_NONE, .answer = &a},
                             NULL);
            check_same("usage chunk", readable[i], b.data, tree);
            free(tree), free(b.data);
            json_object_put(resp);
        }
        free(env.text);
    }
}

static void test_left_to_trees(void)
{
    for (size_t i = 0; i < sizeof unreadable / sizeof unreadable[0]; i++) {
        fr_gw_answer a;
        int rc = fr__gw_answer_scan(unreadable[i], strlen(unreadable[i]), &a);
        if (rc != -1)
            fprintf(stderr, "read without a tree: %s\n", unreadable[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gateway_answer", NULL, NULL);
    CU_add_test(s, "chat.completion: the tree's bytes", test_completion);
    CU_add_test(s, "chunks: the trees' bytes", test_chunks);
    CU_add_test(s, "outputs left to the tree way", test_left_to_trees);
    return fr_test_run_all();
}
