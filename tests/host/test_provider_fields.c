/* Unit tests of core/host/provider_fields.c: which normalized-request fields a provider
 * plugin of a given ABI minor cannot take (the host refuses them, ABI 1.2), and reading
 * the field back out of an "unsupported field 'NAME': " message (the gateway's param).
 * The refusal through a real run is tests/e2e/e2e_provider_fields.sh. */
#include <string.h>

#include <CUnit/Basic.h>

#include "fr_test.h"
#include "host/provider_fields.h"

static void test_too_new(void)
{
    static const struct {
        const char *request, *field; /* field NULL: an ABI 1.1 plugin takes it all */
    } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,"
         "\"temperature\":1,\"stop\":\"s\",\"tools\":[],\"response_format\":{\"type\":"
         "\"json_object\"}}",
         NULL},
        {"{\"messages\":[],\"seed\":null,\"user\":null,\"top_p\":null,\"tool_choice\":null}", NULL},
        {"{\"messages\":[],\"top_p\":0.5}", "top_p"},
        {"{\"messages\":[],\"seed\":0}", "seed"},
        {"{\"messages\":[],\"tool_choice\":\"none\"}", "tool_choice"},
        {"{\"messages\":[],\"user\":\"\"}", "user"},
        {"{\"messages\":[],\"response_format\":{\"type\":\"json_schema\"}}", "response_format"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"developer\","
         "\"content\":\"d\"}]}",
         "messages[1].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":null},{\"role\":\"user\",\"content\":"
         "[]}]}",
         "messages[1].content"},
        {"[1,2]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char field[64] = "unset";
        const char *r = cases[i].request;
        int found = fr__provider_field_too_new(r, strlen(r), 1, field, sizeof field);
        CU_ASSERT_EQUAL(found, cases[i].field != NULL);
        if (cases[i].field)
            CU_ASSERT_STRING_EQUAL(field, cases[i].field);
        /* an ABI 1.2 plugin (or later) takes everything, and 1.0 is refused like 1.1 */
        CU_ASSERT_EQUAL(fr__provider_field_too_new(r, strlen(r), 2, field, sizeof field), 0);
        CU_ASSERT_EQUAL(fr__provider_field_too_new(r, strlen(r), 7, field, sizeof field), 0);
        CU_ASSERT_EQUAL(fr__provider_field_too_new(r, strlen(r), 0, field, sizeof field),
                        cases[i].field != NULL);
    }
}

static void test_unsupported_field(void)
{
    char name[16];
    CU_ASSERT_EQUAL(fr__unsupported_field("provider \"p\": unsupported field 'seed': no seed", name,
                                          sizeof name),
                    1);
    CU_ASSERT_STRING_EQUAL(name, "seed");
    CU_ASSERT_EQUAL(fr__unsupported_field("unsupported field 'messages[1].content[0].image_url': "
                                          "x",
                                          name, sizeof name),
                    1);
    CU_ASSERT_STRING_EQUAL(name, "messages[1].con"); /* cut to fit */
    CU_ASSERT_EQUAL(fr__unsupported_field("provider \"p\": HTTP 400: bad", name, sizeof name), 0);
    CU_ASSERT_STRING_EQUAL(name, "");
    CU_ASSERT_EQUAL(fr__unsupported_field("unsupported field '': x", name, sizeof name), 0);
    CU_ASSERT_EQUAL(fr__unsupported_field("unsupported field 'seed", name, sizeof name), 0);
    CU_ASSERT_EQUAL(fr__unsupported_field(NULL, name, sizeof name), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("provider_fields", NULL, NULL);
    CU_add_test(s, "fields newer than a plugin's ABI", test_too_new);
    CU_add_test(s, "the field of an unsupported-field message", test_unsupported_field);
    return fr_test_run_all();
}
