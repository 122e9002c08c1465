/* Unit tests of the HTTP provider plugins (openai, anthropic, gemini) and of
 * plugins/provider_util.h.
 *
 * The plugins are loaded from $FR_BUILDDIR/plugins/NAME.so with dlopen and driven
 * through a fake host whose http() records the request (URL, headers, body) and answers
 * with a scripted response, so the exact wire shapes are checked without a network.
 * The helpers (Retry-After, SSE, classification) are tested directly: the header is
 * static inline and compiled into this program.
 *
 * Exit status: 0 when every assertion held, 1 otherwise. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "plugin_util.h"
#include "provider_util.h"

#include "fr_test.h"

#include "provider_host.h"

static const char *const base_kv[] = {"model",       "cfg-model", "base_url", "http://h.test/base/",
                                      "api_key_env", "TEST_KEY",  NULL};

/* The request every vendor test builds: system, a tool round trip, options (response_format
 * not for anthropic, which has no JSON response format). */
#define FULL_REQUEST(rf)                                                                         \
    "{\"system\":\"Be brief.\",\"messages\":["                                                   \
    "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"                                     \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"name\":\"get_"    \
    "weather\","                                                                                 \
    "\"arguments\":{\"city\":\"Paris\"}}]},"                                                     \
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"},"                         \
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"                                               \
    "\"max_tokens\":50,\"temperature\":0.5,\"stop\":[\"END\"]," rf                               \
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":{\"type\":" \
    "\"object\"}}]}"
static const char *full_request = FULL_REQUEST("\"response_format\":{\"type\":\"json_object\"},");
static const char *full_request_anthropic = FULL_REQUEST("");

static void setup_key(void)
{
    env_name = "TEST_KEY";
    env_value = "sk-unit-key-1234";
}

/* Opens `plugin`, sends full_request with `answer` scripted, and checks the URL and that
 * the key header goes first and is marked secret.  Returns the call (call_free it). */
static fr_call *send_full(provider *p, const char *plugin, const char *answer, const char *url,
                          const char *key_header)
{
    setup_key();
    ASSERT_STATUS(provider_open(p, plugin, base_kv), FR_OK);
    fr_call *c = call_new(200, answer);
    const char *out;
    ASSERT_STATUS(run(p, c,
                      strcmp(plugin, "anthropic") == 0 ? full_request_anthropic : full_request, 0,
                      &out),
                  FR_OK);
    ASSERT_STR(c->url, url);
    ASSERT_STR(c->headers[0], key_header);
    CU_ASSERT_EQUAL(c->n_secret, 1);
    return c;
}

/* ---- Request building ---------------------------------------------------------------- */

static void test_openai_request(void)
{
    provider p;
    fr_call *c =
        send_full(&p, "openai", "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
                  "http://h.test/base/chat/completions", "Authorization: Bearer sk-unit-key-1234");
    const char *out;
    ASSERT_STR(c->headers[1], "Content-Type: application/json");
    ASSERT_STR(
        c->body,
        "{\"model\":\"cfg-model\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"content\":\"sunny\",\"tool_call_id\":\"c1\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"max_tokens\":50,\"temperature\":0.5,\"stop\":[\"END\"],"
        "\"response_format\":{\"type\":\"json_object\"},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
        "\"Weather\",\"parameters\":{\"type\":\"object\"}}}]}");
    call_free(c);

    /* Streaming asks for usage; the request's own model wins; a stop string becomes a list. */
    c = call_new(200, "data: [DONE]\n\n");
    ASSERT_STATUS(run(&p, c,
                      "{\"model\":\"m2\",\"stop\":\"X\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}]}",
                      1, &out),
                  FR_OK);
    ASSERT_STR(
        c->body,
        "{\"model\":\"m2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[\"X\"],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    ASSERT_STR(c->headers[2], "Accept: text/event-stream");
    call_free(c);
    provider_close(&p);
}

static void test_anthropic_request(void)
{
    provider p;
    fr_call *c = send_full(&p, "anthropic", "{\"content\":[]}", "http://h.test/base/v1/messages",
                           "x-api-key: sk-unit-key-1234");
    const char *out;
    ASSERT_STR(c->headers[c->n_headers - 1], "anthropic-version: 2023-06-01");
    ASSERT_STR(c->body, "{\"model\":\"cfg-model\",\"system\":\"Be brief.\",\"messages\":["
                        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
                        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c1\","
                        "\"name\":\"get_weather\","
                        "\"input\":{\"city\":\"Paris\"}}]},"
                        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                        "\"c1\",\"content\":\"sunny\"}]},"
                        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
                        "\"max_tokens\":50,\"temperature\":0.5,\"stop_sequences\":[\"END\"],"
                        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_"
                        "schema\":{\"type\":\"object\"}}]}");
    call_free(c);

    /* max_tokens is always sent; system messages join the top-level system. */
    c = call_new(200, "{\"content\":[]}");
    ASSERT_STATUS(run(&p, c,
                      "{\"system\":\"A\",\"messages\":[{\"role\":\"system\",\"content\":\"B\"},"
                      "{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}",
                      0, &out),
                  FR_OK);
    ASSERT_STR(c->body,
               "{\"model\":\"cfg-model\",\"system\":\"A\\n\\nB\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"hi\"}],\"max_tokens\":1024}");
    call_free(c);
    provider_close(&p);

    /* auth: bearer, a custom version and default_max_tokens. */
    const char *kv[] = {
        "model",  "m",       "base_url",   "https://gw.test",    "api_key_env", "TEST_KEY", "auth",
        "bearer", "version", "2099-01-01", "default_max_tokens", "77",          NULL};
    ASSERT_STATUS(provider_open(&p, "anthropic", kv), FR_OK);
    c = call_new(200, "{\"content\":[]}");
    ASSERT_STATUS(run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out),
                  FR_OK);
    ASSERT_STR(c->headers[0], "Authorization: Bearer sk-unit-key-1234");
    ASSERT_STR(c->headers[c->n_headers - 1], "anthropic-version: 2099-01-01");
    ASSERT_CONTAINS(c->body, "\"max_tokens\":77");
    call_free(c);
    provider_close(&p);

    const char *bad[] = {"model", "m", "api_key_env", "TEST_KEY", "auth", "basic", NULL};
    ASSERT_STATUS(provider_open(&p, "anthropic", bad), FR_E_CONFIG);
    ASSERT_CONTAINS(init_error, "option auth must be x-api-key or bearer");
    provider_close(&p);
}

static void test_gemini_request(void)
{
    provider p;
    fr_call *c = send_full(
        &p, "gemini",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}]}",
        "http://h.test/base/v1beta/models/cfg-model:generateContent",
        "x-goog-api-key: sk-unit-key-1234");
    const char *out;
    ASSERT_STR(c->body,
               "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Weather in Paris?\"}]},"
               "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
               "\"args\":{\"city\":\"Paris\"}}}]},"
               "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\","
               "\"response\":"
               "{\"content\":\"sunny\"}}}]},"
               "{\"role\":\"user\",\"parts\":[{\"text\":\"Thanks\"}]}],"
               "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
               "\"generationConfig\":{\"maxOutputTokens\":50,\"temperature\":0.5,\"stopSequences\":"
               "[\"END\"],"
               "\"responseMimeType\":\"application/json\"},"
               "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":"
               "\"Weather\","
               "\"parameters\":{\"type\":\"object\"}}]}]}");
    call_free(c);

    c = call_new(200, "");
    ASSERT_STATUS(
        run(&p, c,
            "{\"model\":\"models/g-2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1,
            &out),
        FR_E_STREAM_TRUNCATED);
    ASSERT_STR(c->url, "http://h.test/base/v1beta/models/g-2:streamGenerateContent?alt=sse");
    ASSERT_STR(c->body, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}");
    call_free(c);

    /* A model name cannot smuggle a path or query into the URL. */
    c = call_new(200, "");
    ASSERT_STATUS(
        run(&p, c,
            "{\"model\":\"x/../y?k=1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0,
            &out),
        FR_E_BAD_REQUEST);
    ASSERT_CONTAINS(c->error, "gemini: model name");
    call_free(c);
    provider_close(&p);
}

static void test_request_validation(void)
{
    static const struct {
        const char *request, *error;
    } cases[] = {
        {"nope", "request is not valid JSON"},
        {"[]", "request is not a JSON object"},
        {"{}", "non-empty \"messages\""},
        {"{\"messages\":[]}", "non-empty \"messages\""},
        {"{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
         "messages[0].content must be a string"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "needs a tool_call_id"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "\"stop\""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}",
         "tools[0] needs a string name"},
        /* ABI 1.2 fields */
        {"{\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
         "messages[0].content must not be an empty array"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}",
         "messages[0].content[0] must be an object whose type is text or image_url"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
         "messages[0].content[0].text must be a string"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]}",
         "messages[0].content[0]: image parts are allowed in user messages only"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"http://x.test/a.png\"}}]}]}",
         "messages[0].content[0].image_url.url must be an image's data: URL (data:image/...) or "
         "an https:// URL"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:text/plain;base64,aGk=\"}}]}]}",
         "messages[0].content[0].image_url.url must be an image's data: URL"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"https://x.test/a.png\",\"detail\":\"max\"}}]}]}",
         "messages[0].content[0].image_url.detail must be auto, low or high"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}",
         "\"top_p\" must be a number from 0 to 1"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":\"0.5\"}", "\"top_p\""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":1.5}",
         "\"seed\" must be an integer"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":5}",
         "\"user\" must be a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"any\"}",
         "\"tool_choice\" must be"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}",
         "\"tool_choice\" asks for a tool call but the request has no tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"name\":\"f\"}],"
         "\"tool_choice\":{\"name\":\"g\"}}",
         "\"tool_choice\" names \"g\", which is not among tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
         "\"json_schema\"}}",
         "response_format json_schema needs a json_schema object with a string name"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
         "\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":[]}}}",
         "response_format.json_schema.schema must be an object"},
    };
    provider p;
    setup_key();
    ASSERT_STATUS(provider_open(&p, "openai", base_kv), FR_OK);
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        fr_call *c = call_new(200, "{}");
        const char *out;
        ASSERT_STATUS(run(&p, c, cases[i].request, 0, &out), FR_E_BAD_REQUEST);
        ASSERT_CONTAINS(c->error, cases[i].error);
        CU_ASSERT_EQUAL(c->url[0], '\0'); /* nothing was sent */
        call_free(c);
    }
    provider_close(&p);
}

static void test_init(void)
{
    provider p;
    env_name = NULL;
    ASSERT_STATUS(provider_open(&p, "openai", (const char *const[]){"model", "m", NULL}),
                  FR_E_CONFIG);
    ASSERT_STR(init_error, "openai: environment variable OPENAI_API_KEY is not set (api_key_env)");
    provider_close(&p);
    ASSERT_STATUS(provider_open(&p, "anthropic", (const char *const[]){"model", "m", NULL}),
                  FR_E_CONFIG);
    ASSERT_STR(init_error,
               "anthropic: environment variable ANTHROPIC_API_KEY is not set (api_key_env)");
    provider_close(&p);
    ASSERT_STATUS(provider_open(&p, "gemini", (const char *const[]){"model", "m", NULL}),
                  FR_E_CONFIG);
    ASSERT_STR(init_error, "gemini: environment variable GEMINI_API_KEY is not set (api_key_env)");
    provider_close(&p);

    /* api_key_env: "" sends no key (local servers). */
    const char *kv[] = {"model",       "llama3",    "base_url", "http://localhost:11434/v1",
                        "api_key_env", "",          "timeout",  "250000",
                        "ca_file",     "/x/ca.pem", NULL};
    ASSERT_STATUS(provider_open(&p, "openai", kv), FR_OK);
    fr_call *c = call_new(200, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}");
    const char *out;
    ASSERT_STATUS(run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out),
                  FR_OK);
    ASSERT_STR(c->url, "http://localhost:11434/v1/chat/completions");
    ASSERT_STR(c->headers[0], "Content-Type: application/json");
    CU_ASSERT_EQUAL(c->n_secret, 0);
    CU_ASSERT_EQUAL(c->timeout_us, 250000);
    ASSERT_STR(c->ca_file, "/x/ca.pem");
    call_free(c);
    provider_close(&p);

    setup_key();
    const char *badurl[] = {"model", "m", "api_key_env", "TEST_KEY", "base_url", "ftp://x", NULL};
    ASSERT_STATUS(provider_open(&p, "gemini", badurl), FR_E_CONFIG);
    ASSERT_CONTAINS(init_error, "base_url must start with http:// or https://");
    provider_close(&p);
}

/* ---- ABI 1.2 request fields --------------------------------------------------------- */

/* JSON written with single quotes, for legibility: t with every ' turned into ".  The
 * result lives in one of 4 static buffers, reused in turn. */
static const char *J(const char *t)
{
    static char bufs[4][8192];
    static int next;
    char *b = bufs[next++ % 4];
    size_t i = 0;
    for (; t[i] && i + 1 < sizeof bufs[0]; i++)
        b[i] = t[i] == '\'' ? '"' : t[i];
    b[i] = '\0';
    return b;
}

/* Sends request to plugin (whole) and checks the wire body is want exactly. */
static void wire_is(const char *plugin, const char *request, const char *want)
{
    provider p;
    setup_key();
    ASSERT_STATUS(provider_open(&p, plugin, base_kv), FR_OK);
    fr_call *c = call_new(200, "{}");
    const char *out;
    run(&p, c, request, 0, &out);
    if (strcmp(c->body, want) != 0)
        fprintf(stderr, "\n%s: %s\n", plugin, c->error);
    ASSERT_STR(c->body, want);
    call_free(c);
    provider_close(&p);
}

#define PNG   "data:image/png;base64,iVBORw0KGgo="
#define TOOLS "'tools':[{'name':'f','description':'F','parameters':{'type':'object'}}]"

/* Every new field, per vendor, byte for byte. */
static void test_fields_1_2(void)
{
    /* developer (as parts), text and image parts, top_p, tool_choice {name} */
    const char *common =
        "'system':'S','messages':[{'role':'developer','content':[{'type':'text','text':'D1'},"
        "{'type':'text','text':'D2'}]},{'role':'user','content':[{'type':'text','text':'look'},"
        "{'type':'image_url','image_url':{'url':'" PNG "'}}";
    char req[2048];

    snprintf(
        req, sizeof req,
        "{%s,{'type':'image_url','image_url':{'url':'https://x.test/a.jpg','detail':'high'}}]}],"
        "'top_p':0.5,'seed':7,'user':'u1'," TOOLS ",'tool_choice':{'name':'f'},"
        "'response_format':{'type':'json_schema','json_schema':{'name':'n','schema':{'type':"
        "'object'},'strict':true,'extra':1}}}",
        common);
    wire_is("openai", J(req),
            J("{'model':'cfg-model','messages':[{'role':'system','content':'S'},"
              "{'role':'developer','content':[{'type':'text','text':'D1'},{'type':'text','text':"
              "'D2'}]},{'role':'user','content':[{'type':'text','text':'look'},{'type':'image_url',"
              "'image_url':{'url':'" PNG "'}},{'type':'image_url','image_url':{'url':"
              "'https://x.test/a.jpg','detail':'high'}}]}],'top_p':0.5,'seed':7,"
              "'response_format':{'type':'json_schema','json_schema':{'name':'n','schema':{'type':"
              "'object'},'strict':true}},'tools':[{'type':'function','function':{'name':'f',"
              "'description':'F','parameters':{'type':'object'}}}],'tool_choice':{'type':"
              "'function','function':{'name':'f'}},'user':'u1'}"));

    snprintf(
        req, sizeof req,
        "{%s,{'type':'image_url','image_url':{'url':'https://x.test/a.jpg','detail':'auto'}}]}],"
        "'top_p':0.5,'user':'u1'," TOOLS ",'tool_choice':{'name':'f'}}",
        common);
    wire_is("anthropic", J(req),
            J("{'model':'cfg-model','system':'S\\n\\nD1\\n\\nD2','messages':[{'role':'user',"
              "'content':[{'type':'text','text':'look'},{'type':'image','source':{'type':'base64',"
              "'media_type':'image/png','data':'iVBORw0KGgo='}},{'type':'image','source':{'type':"
              "'url','url':'https://x.test/a.jpg'}}]}],'max_tokens':1024,'top_p':0.5,'tools':[{"
              "'name':'f','description':'F','input_schema':{'type':'object'}}],'tool_choice':{"
              "'type':'tool','name':'f'},'metadata':{'user_id':'u1'}}"));

    snprintf(
        req, sizeof req,
        "{%s,{'type':'image_url','image_url':{'url':'https://generativelanguage.googleapis.com/"
        "v1beta/files/f1'}}]}],'top_p':0.5,'seed':7," TOOLS ",'tool_choice':{'name':'f'},"
        "'response_format':{'type':'json_schema','json_schema':{'name':'n','schema':{'type':"
        "'object'}}}}",
        common);
    wire_is("gemini", J(req),
            J("{'contents':[{'role':'user','parts':[{'text':'look'},{'inlineData':{'mimeType':"
              "'image/png','data':'iVBORw0KGgo='}},{'fileData':{'fileUri':"
              "'https://generativelanguage.googleapis.com/v1beta/files/f1'}}]}],"
              "'systemInstruction':{'parts':[{'text':'S'},{'text':'D1'},{'text':'D2'}]},"
              "'generationConfig':{'topP':0.5,'seed':7,'responseMimeType':'application/json',"
              "'responseJsonSchema':{'type':'object'}},'tools':[{'functionDeclarations':[{'name':"
              "'f','description':'F','parameters':{'type':'object'}}]}],'toolConfig':{"
              "'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['f']}}}"));

    /* A tool round trip with content parts in the assistant and tool messages. */
    const char *round =
        "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':[{'type':"
        "'text','text':'Checking.'}],'tool_calls':[{'id':'c1','name':'f','arguments':{'a':1}}]},"
        "{'role':'tool','tool_call_id':'c1','content':[{'type':'text','text':'r1'},{'type':'text',"
        "'text':'r2'}]}]," TOOLS "}";
    wire_is("openai", J(round),
            J("{'model':'cfg-model','messages':[{'role':'user','content':'q'},{'role':'assistant',"
              "'content':[{'type':'text','text':'Checking.'}],'tool_calls':[{'id':'c1','type':"
              "'function','function':{'name':'f','arguments':'{\\'a\\':1}'}}]},{'role':'tool',"
              "'content':[{'type':'text','text':'r1'},{'type':'text','text':'r2'}],'tool_call_id':"
              "'c1'}],'tools':[{'type':'function','function':{'name':'f','description':'F',"
              "'parameters':{'type':'object'}}}]}"));
    wire_is("anthropic", J(round),
            J("{'model':'cfg-model','messages':[{'role':'user','content':'q'},{'role':'assistant',"
              "'content':[{'type':'text','text':'Checking.'},{'type':'tool_use','id':'c1','name':"
              "'f','input':{'a':1}}]},{'role':'user','content':[{'type':'tool_result',"
              "'tool_use_id':'c1','content':[{'type':'text','text':'r1'},{'type':'text','text':"
              "'r2'}]}]}],'max_tokens':1024,'tools':[{'name':'f','description':'F','input_schema':"
              "{'type':'object'}}]}"));
    wire_is("gemini", J(round),
            J("{'contents':[{'role':'user','parts':[{'text':'q'}]},{'role':'model','parts':[{"
              "'text':'Checking.'},{'functionCall':{'name':'f','args':{'a':1}}}]},{'role':'user',"
              "'parts':[{'functionResponse':{'name':'f','response':{'content':'r1\\n\\nr2'}}}]}],"
              "'tools':[{'functionDeclarations':[{'name':'f','description':'F','parameters':{"
              "'type':'object'}}]}]}"));
}

/* tool_choice's values, per vendor; auto and none without tools say nothing. */
static void test_tool_choice(void)
{
    static const struct {
        const char *choice, *openai, *anthropic, *gemini;
    } cases[] = {
        {"'auto'", ",'tool_choice':'auto'", ",'tool_choice':{'type':'auto'}",
         ",'toolConfig':{'functionCallingConfig':{'mode':'AUTO'}}"},
        {"'none'", ",'tool_choice':'none'", ",'tool_choice':{'type':'none'}",
         ",'toolConfig':{'functionCallingConfig':{'mode':'NONE'}}"},
        {"'required'", ",'tool_choice':'required'", ",'tool_choice':{'type':'any'}",
         ",'toolConfig':{'functionCallingConfig':{'mode':'ANY'}}"},
        {"null", "", "", ""},
    };
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        char req[512], want[1024];
        snprintf(req, sizeof req,
                 "{'messages':[{'role':'user','content':'x'}]," TOOLS ",'tool_choice':%s}",
                 cases[i].choice);
        snprintf(want, sizeof want,
                 "{'model':'cfg-model','messages':[{'role':'user','content':'x'}],'tools':[{'type':"
                 "'function','function':{'name':'f','description':'F','parameters':{'type':"
                 "'object'}}}]%s}",
                 cases[i].openai);
        wire_is("openai", J(req), J(want));
        snprintf(
            want, sizeof want,
            "{'model':'cfg-model','messages':[{'role':'user','content':'x'}],'max_tokens':1024,"
            "'tools':[{'name':'f','description':'F','input_schema':{'type':'object'}}]%s}",
            cases[i].anthropic);
        wire_is("anthropic", J(req), J(want));
        snprintf(want, sizeof want,
                 "{'contents':[{'role':'user','parts':[{'text':'x'}]}],'tools':[{"
                 "'functionDeclarations':[{'name':'f','description':'F','parameters':{'type':"
                 "'object'}}]}]%s}",
                 cases[i].gemini);
        wire_is("gemini", J(req), J(want));
    }
    const char *plugins[] = {"openai", "anthropic", "gemini"};
    for (size_t i = 0; i < 3; i++) {
        wire_is(plugins[i], J("{'messages':[{'role':'user','content':'x'}],'tool_choice':'auto'}"),
                i == 0   ? J("{'model':'cfg-model','messages':[{'role':'user','content':'x'}]}")
                : i == 1 ? J("{'model':'cfg-model','messages':[{'role':'user','content':'x'}],"
                             "'max_tokens':1024}")
                         : J("{'contents':[{'role':'user','parts':[{'text':'x'}]}]}"));
    }
}

/* Fields a vendor cannot take: FR_E_BAD_REQUEST, a message starting exactly
 * "unsupported field 'NAME': ", nothing sent. */
static void test_unsupported(void)
{
    static const struct {
        const char *plugin, *request, *message;
    } cases[] = {
        {"anthropic", "{'messages':[{'role':'user','content':'x'}],'seed':1}",
         "unsupported field 'seed': the anthropic Messages API has no seed"},
        {"anthropic",
         "{'messages':[{'role':'user','content':'x'}],'response_format':{'type':"
         "'json_object'}}",
         "unsupported field 'response_format': the anthropic Messages API has no JSON response "
         "format (json_object)"},
        {"anthropic",
         "{'messages':[{'role':'user','content':'x'}],'response_format':{'type':"
         "'json_schema','json_schema':{'name':'n'}}}",
         "unsupported field 'response_format': "},
        {"anthropic",
         "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'" PNG "','detail':'low'}}]}]}",
         "unsupported field 'messages[0].content[0].image_url.detail': "},
        {"anthropic",
         "{'messages':[{'role':'user','content':'a'},{'role':'user','content':[{"
         "'type':'text','text':'b'},{'type':'image_url','image_url':{'url':"
         "'data:image/png,rawbytes'}}]}]}",
         "unsupported field 'messages[1].content[1].image_url': anthropic takes data: URLs in "
         "base64 only"},
        {"anthropic",
         "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'data:image/bmp;base64,Qk0='}}]}]}",
         "unsupported field 'messages[0].content[0].image_url': anthropic takes image/jpeg, "
         "image/png, image/gif and image/webp, not image/bmp"},
        {"gemini", "{'messages':[{'role':'user','content':'x'}],'user':'u'}",
         "unsupported field 'user': the gemini generateContent API has no end-user identifier"},
        {"gemini",
         "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'https://x.test/a.png'}}]}]}",
         "unsupported field 'messages[0].content[0].image_url': gemini takes images inline"},
        {"gemini",
         "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'data:image/png;charset=x,abc'}}]}]}",
         "unsupported field 'messages[0].content[0].image_url': gemini takes data: URLs in base64 "
         "only"},
        {"gemini",
         "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{"
         "'url':'" PNG "','detail':'high'}}]}]}",
         "unsupported field 'messages[0].content[0].image_url.detail': "},
    };
    setup_key();
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        provider p;
        ASSERT_STATUS(provider_open(&p, cases[i].plugin, base_kv), FR_OK);
        for (int stream = 0; stream < 2; stream++) {
            fr_call *c = call_new(200, "{}");
            const char *out;
            ASSERT_STATUS(run(&p, c, J(cases[i].request), stream, &out), FR_E_BAD_REQUEST);
            if (strncmp(c->error, cases[i].message, strlen(cases[i].message)) != 0)
                fprintf(stderr, "\nunsupported case %zu: %s\n", i, c->error);
            CU_ASSERT_EQUAL(strncmp(c->error, cases[i].message, strlen(cases[i].message)), 0);
            CU_ASSERT_EQUAL(c->url[0], '\0'); /* nothing was sent */
            call_free(c);
        }
        provider_close(&p);
    }
}

/* ---- Response parsing ---------------------------------------------------------------- */

typedef struct resp_case {
    const char *plugin, *body, *want;
} resp_case;

static void test_responses(void)
{
    static const resp_case cases[] = {
        {"openai",
         "{\"model\":\"gpt-x\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi!"
         "\"},"
         "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}",
         "{\"text\":\"Hi!\",\"tool_calls\":[],\"finish_reason\":\"length\",\"usage\":{\"input_"
         "tokens\":3,"
         "\"output_tokens\":2},\"model\":\"gpt-x\"}"},
        {"openai",
         "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"t1\",\"type\":"
         "\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":[1,2]}\"}},{\"id\":\"t2\","
         "\"function\":"
         "{\"name\":\"g\",\"arguments\":\"\"}}]},\"finish_reason\":\"tool_calls\"}]}",
         "{\"text\":\"\",\"tool_calls\":[{\"id\":\"t1\",\"name\":\"f\",\"arguments\":{\"a\":[1,2]}}"
         ","
         "{\"id\":\"t2\",\"name\":\"g\",\"arguments\":{}}],\"finish_reason\":\"tool_calls\","
         "\"usage\":null,\"model\":\"cfg-model\"}"},
        {"openai",
         "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"content_filter\"}]}",
         "{\"text\":\"\",\"tool_calls\":[],\"finish_reason\":\"content_filter\",\"usage\":"
         "null,\"model\":\"cfg-model\"}"},
        /* usage reported as 0 stays 0; a usage object missing a count counts it 0 */
        {"openai",
         "{\"choices\":[{\"message\":{\"content\":\"z\"}}],\"usage\":{\"prompt_tokens\":0,"
         "\"completion_tokens\":0}}",
         "{\"text\":\"z\",\"tool_calls\":[],\"finish_reason\":\"stop\",\"usage\":{\"input_"
         "tokens\":0,\"output_tokens\":0},\"model\":\"cfg-model\"}"},
        {"openai", "{\"choices\":[{\"message\":{\"content\":\"z\"}}],\"usage\":{}}",
         "{\"text\":\"z\",\"tool_calls\":[],\"finish_reason\":\"stop\",\"usage\":{\"input_"
         "tokens\":0,\"output_tokens\":0},\"model\":\"cfg-model\"}"},
        /* a usage that is not an object is none at all */
        {"openai", "{\"choices\":[{\"message\":{\"content\":\"z\"}}],\"usage\":null}",
         "{\"text\":\"z\",\"tool_calls\":[],\"finish_reason\":\"stop\",\"usage\":null,"
         "\"model\":\"cfg-model\"}"},
        {"anthropic",
         "{\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":\"Let me "
         "\"},{\"type\":\"text\","
         "\"text\":\"look.\"},{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"f\",\"input\":{"
         "\"q\":1}}],"
         "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,\"output_tokens\":4}}",
         "{\"text\":\"Let me "
         "look.\",\"tool_calls\":[{\"id\":\"tu1\",\"name\":\"f\",\"arguments\":{\"q\":1}}],"
         "\"finish_reason\":\"tool_calls\",\"usage\":{\"input_tokens\":10,\"output_tokens\":4},"
         "\"model\":\"claude-x\"}"},
        {"anthropic",
         "{\"content\":[{\"type\":\"text\",\"text\":\"cut\"}],\"stop_reason\":\"max_tokens\"}",
         "{\"text\":\"cut\",\"tool_calls\":[],\"finish_reason\":\"length\",\"usage\":null,"
         "\"model\":\"cfg-model\"}"},
        {"gemini",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"},{\"text\":\"lo\"}],\"role\":"
         "\"model\"},"
         "\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":5,"
         "\"candidatesTokenCount\":2},"
         "\"modelVersion\":\"gemini-x-001\"}",
         "{\"text\":\"Hello\",\"tool_calls\":[],\"finish_reason\":\"length\",\"usage\":{\"input_"
         "tokens\":5,"
         "\"output_tokens\":2},\"model\":\"gemini-x-001\"}"},
        {"gemini",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{"
         "\"x\":true}}},"
         "{\"functionCall\":{\"name\":\"g\"}}]},\"finishReason\":\"STOP\"}]}",
         "{\"text\":\"\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"f\",\"arguments\":{\"x\":"
         "true}},"
         "{\"id\":\"call_2\",\"name\":\"g\",\"arguments\":{}}],\"finish_reason\":\"tool_calls\","
         "\"usage\":null,\"model\":\"cfg-model\"}"},
        {"gemini",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"SAFETY\"}]"
         "}",
         "{\"text\":\"\",\"tool_calls\":[],\"finish_reason\":\"content_filter\",\"usage\":null,"
         "\"model\":\"cfg-model\"}"},
    };
    setup_key();
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        provider p;
        ASSERT_STATUS(provider_open(&p, cases[i].plugin, base_kv), FR_OK);
        fr_call *c = call_new(200, cases[i].body);
        const char *out = NULL;
        ASSERT_STATUS(
            run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out), FR_OK);
        ASSERT_STR(out, cases[i].want);
        call_free(c);
        provider_close(&p);
    }
}

/* ---- Errors -------------------------------------------------------------------------- */

typedef struct err_case {
    const char *plugin;
    int status;
    const char *body;
    fr_status want;
    const char *message;
} err_case;

static void test_errors(void)
{
    static const err_case cases[] = {
        {"openai", 429,
         "{\"error\":{\"message\":\"Rate limit reached for gpt-4o\",\"type\":\"requests\","
         "\"code\":\"rate_limit_exceeded\"}}",
         FR_E_RATE_LIMITED,
         "openai: HTTP 429: Rate limit reached for gpt-4o (rate_limit_exceeded)"},
        {"openai", 400,
         "{\"error\":{\"message\":\"too much\",\"code\":\"context_length_exceeded\"}}",
         FR_E_CONTEXT_WINDOW, "openai: HTTP 400: too much (context_length_exceeded)"},
        {"openai", 400, "{\"error\":{\"message\":\"no\",\"code\":\"content_policy_violation\"}}",
         FR_E_CONTENT_POLICY, "HTTP 400: no"},
        {"openai", 400, "{\"error\":{\"message\":\"no\",\"code\":\"content_filter\"}}",
         FR_E_CONTENT_POLICY, "no"},
        {"openai", 400,
         "{\"error\":{\"message\":\"Invalid value for "
         "temperature\",\"type\":\"invalid_request_error\"}}",
         FR_E_BAD_REQUEST, "Invalid value for temperature (invalid_request_error)"},
        {"openai", 401,
         "{\"error\":{\"message\":\"Incorrect API key provided: sk-unit-key-1234.\"}}", FR_E_AUTH,
         "HTTP 401: Incorrect API key provided: [REDACTED]."},
        {"openai", 403, "{}", FR_E_AUTH, "HTTP 403: {}"},
        {"openai", 408, "", FR_E_REQUEST_TIMEOUT, "HTTP 408: (empty body)"},
        {"openai", 500, "<html>\n<b>oops</b></html>", FR_E_UNAVAILABLE,
         "HTTP 500: <html> <b>oops</b></html>"},
        {"openai", 502, "{}", FR_E_UNAVAILABLE, "HTTP 502"},
        {"openai", 504, "{}", FR_E_UNAVAILABLE, "HTTP 504"},
        {"openai", 503, "{}", FR_E_OVERLOADED, "HTTP 503"},
        {"openai", 599, "{}", FR_E_UNAVAILABLE, "HTTP 599"},
        {"openai", 418, "{}", FR_E_BAD_REQUEST, "HTTP 418"},
        {"anthropic", 529,
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}"
         "}",
         FR_E_OVERLOADED, "anthropic: HTTP 529: Overloaded (overloaded_error)"},
        {"anthropic", 400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
         "\"prompt is too long: 210000 tokens > 200000 maximum\"}}",
         FR_E_CONTEXT_WINDOW, "prompt is too long"},
        {"anthropic", 400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
         "\"Output blocked by content filtering policy\"}}",
         FR_E_CONTENT_POLICY, "content filtering policy"},
        {"gemini", 400,
         "{\"error\":{\"code\":400,\"message\":\"The input token count (1200000) exceeds the "
         "maximum number of tokens allowed (1048576).\",\"status\":\"INVALID_ARGUMENT\"}}",
         FR_E_CONTEXT_WINDOW, "gemini: HTTP 400: The input token count"},
        {"gemini", 429,
         "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":"
         "\"RESOURCE_EXHAUSTED\"}}",
         FR_E_RATE_LIMITED, "Resource has been exhausted (RESOURCE_EXHAUSTED)"},
        /* 2xx bodies that are not answers. */
        {"openai", 200, "{\"choices\":[]}", FR_E_BAD_RESPONSE,
         "openai: answer has no choices[0].message"},
        {"openai", 200, "{\"choices\":[{\"message\":{\"con", FR_E_BAD_RESPONSE,
         "openai: HTTP 200 with a body that is not valid JSON"},
        {"openai", 200, "[1]", FR_E_BAD_RESPONSE, "not a JSON object"},
        {"anthropic", 200, "{\"id\":\"x\"}", FR_E_BAD_RESPONSE,
         "anthropic: answer has no \"content\" array"},
        {"anthropic", 200, "{\"content\":[{\"type\":\"tool_use\",\"id\":\"x\"}]}",
         FR_E_BAD_RESPONSE, "lacks id, name or input"},
        {"gemini", 200, "{\"usageMetadata\":{}}", FR_E_BAD_RESPONSE,
         "gemini: answer has no candidates"},
        {"gemini", 200, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}", FR_E_CONTENT_POLICY,
         "gemini: prompt blocked (blockReason SAFETY)"},
        {"gemini", 200,
         "{\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}",
         FR_E_OVERLOADED, "gemini: busy (UNAVAILABLE)"},
    };
    setup_key();
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        provider p;
        ASSERT_STATUS(provider_open(&p, cases[i].plugin, base_kv), FR_OK);
        fr_call *c = call_new(cases[i].status, cases[i].body);
        const char *out;
        fr_status st =
            run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out);
        if (st != cases[i].want)
            fprintf(stderr, "\ncase %zu (%s %d)\n", i, cases[i].plugin, cases[i].status);
        ASSERT_STATUS(st, cases[i].want);
        ASSERT_CONTAINS(c->error, cases[i].message);
        CU_ASSERT_PTR_NULL(strstr(c->error, "sk-unit-key-1234"));
        call_free(c);
        provider_close(&p);
    }

    /* Transport failures from host->http pass through unchanged. */
    provider p;
    ASSERT_STATUS(provider_open(&p, "openai", base_kv), FR_OK);
    fr_status passthrough[] = {FR_E_NETWORK, FR_E_TIMEOUT, FR_E_CANCELLED, FR_E_DEADLINE_EXCEEDED};
    for (size_t i = 0; i < PU_COUNT(passthrough); i++) {
        fr_call *c = call_new(200, "");
        c->http_status = passthrough[i];
        const char *out;
        ASSERT_STATUS(
            run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out),
            passthrough[i]);
        call_free(c);
    }
    provider_close(&p);
}

/* ---- Retry-After --------------------------------------------------------------------- */

static void test_retry_after_parser(void)
{
    static const struct {
        const char *value;
        int64_t now_us;
        int rc;
        int64_t want_us;
    } cases[] = {
        {"120", 0, 0, 120000000},
        {"  7 ", 0, 0, 7000000},
        {"0", 0, 0, 0},
        {"1.5", 0, 0, 1500000},
        {"99999999999999999999", 0, 0, FRK_RETRY_AFTER_MAX_US},
        /* 1994-11-06 08:49:37 UTC is 784111777 */
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777LL * 1000000 - 30000000, 0, 30000000},
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777LL * 1000000 + 5000000, 0, 0}, /* past */
        {"Wed, 21 Oct 2015 07:28:00 GMT", 1445412480LL * 1000000 - 2500000, 0, 2500000},
        {"Thu, 29 Feb 2024 23:59:59 GMT", 1709251199LL * 1000000 - 1000000, 0, 1000000},
        {"", 0, -1, 0},
        {"soon", 0, -1, 0},
        {"12s", 0, -1, 0},
        {"-5", 0, -1, 0},
        {"Sun, 06 Nov 1994 08:49:37 UTC", 0, -1, 0},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 0, -1, 0},
        {"Sun, 06 Foo 1994 08:49:37 GMT", 0, -1, 0},
        {"Sun, 06 Nov 1994 25:49:37 GMT", 0, -1, 0},
    };
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        int64_t got = -42;
        int rc = frk_retry_after(cases[i].value, strlen(cases[i].value), cases[i].now_us, &got);
        if (rc != cases[i].rc || (rc == 0 && got != cases[i].want_us))
            fprintf(stderr, "\nRetry-After \"%s\": rc %d, %lld us\n", cases[i].value, rc,
                    (long long)got);
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        if (rc == 0)
            CU_ASSERT_EQUAL(got, cases[i].want_us);
    }
}

static void test_retry_after_plugin(void)
{
    static const struct {
        int status;
        const char *headers;
        int64_t clock_us, want_us;
    } cases[] = {
        {429, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n\r\n", 0, 2000000},
        {429, "HTTP/1.1 429 x\r\nretry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n",
         1445412480LL * 1000000 - 4000000, 4000000},
        {429, "HTTP/1.1 429 x\r\nRetry-After: 30\r\nretry-after-ms: 1500\r\n\r\n", 0, 1500000},
        {503, "HTTP/1.1 503 x\r\nRetry-After: 9\r\n\r\n", 0, 9000000},
        /* Only the last response head counts (a 100 Continue came first). */
        {429, "HTTP/1.1 100 Continue\r\nRetry-After: 50\r\n\r\nHTTP/1.1 429 x\r\n\r\n", 0, 0},
        {429, "HTTP/1.1 429 x\r\nRetry-After: later\r\n\r\n", 0, 0},
        {500, "HTTP/1.1 500 x\r\nRetry-After: 3\r\n\r\n", 0, 0},
    };
    setup_key();
    provider p;
    ASSERT_STATUS(provider_open(&p, "anthropic", base_kv), FR_OK);
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        fr_call *c = call_new(cases[i].status, "{}");
        c->resp_headers = cases[i].headers;
        c->clock = cases[i].clock_us;
        const char *out;
        run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &out);
        if (c->retry_after != cases[i].want_us)
            fprintf(stderr, "\ncase %zu: retry_after %lld\n", i, (long long)c->retry_after);
        CU_ASSERT_EQUAL(c->retry_after, cases[i].want_us);
        call_free(c);
    }
    provider_close(&p);
}

/* ---- SSE ----------------------------------------------------------------------------- */

static void test_sse_parser(void)
{
    const char *text = ": comment\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\n"
                       "id: 5\nretry: 10\n\n" /* no data, no event: skipped */
                       "data: {\"x\": 1}\n\n"
                       "event: tail\ndata: incomplete"; /* no blank line: discarded */
    const char *pos = text, *end = text + strlen(text);
    char event[32];
    frk_buf data = {0};
    CU_ASSERT_EQUAL(frk_sse_next(&pos, end, event, sizeof event, &data), 1);
    ASSERT_STR(event, "a");
    ASSERT_STR(data.data, "one\ntwo");
    CU_ASSERT_EQUAL(frk_sse_next(&pos, end, event, sizeof event, &data), 1);
    ASSERT_STR(event, "");
    ASSERT_STR(data.data, "{\"x\": 1}");
    /* The incomplete event stays unconsumed, for a reader that gets more bytes later. */
    CU_ASSERT_EQUAL(frk_sse_next(&pos, end, event, sizeof event, &data), 0);
    ASSERT_STR(pos, "event: tail\ndata: incomplete");
    CU_ASSERT_EQUAL(frk_sse_next(&pos, end, event, sizeof event, &data), 0);
    ASSERT_STR(pos, "event: tail\ndata: incomplete");
    /* Comments and blank lines before it are consumed; a lone CR ends a line. */
    const char *lead = "\n: ping\r\n\r\ndata: x\r";
    pos = lead;
    CU_ASSERT_EQUAL(frk_sse_next(&pos, lead + strlen(lead), event, sizeof event, &data), 0);
    ASSERT_STR(pos, "data: x\r");
    frk_buf_free(&data);

    /* An unterminated last line is incomplete even when it looks whole. */
    const char *cut = "data: [DONE]";
    pos = cut;
    CU_ASSERT_EQUAL(frk_sse_next(&pos, cut + strlen(cut), event, sizeof event, &data), 0);
    frk_buf_free(&data);
}

typedef struct stream_case {
    const char *plugin, *body;
    fr_status want;
    const char *chunks, *response_or_error;
} stream_case;

static void test_streams(void)
{
    static const stream_case cases[] = {
        {"openai",
         "data: "
         "{\"model\":\"gpt-s\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
         "\"content\":\"\"}}]}\n\n"
         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
         ": keep-alive\n\n"
         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
         "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
         "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n"
         "data: [DONE]\n\n",
         FR_OK, "[Hel][lo]",
         "{\"text\":\"Hello\",\"tool_calls\":[],\"finish_reason\":\"stop\",\"usage\":{\"input_"
         "tokens\":4,"
         "\"output_tokens\":2},\"model\":\"gpt-s\"}"},
        {"openai",
         "data: "
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t1\",\"function\":{"
         "\"name\":\"f\","
         "\"arguments\":\"\"}}]}}]}\n\n"
         "data: "
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{"
         "\\\"a\\\":\"}}]}}]}\n\n"
         "data: "
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}"
         "\"}}]}}]}\n\n"
         "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
         "data: [DONE]\n\n",
         FR_OK, "",
         "{\"text\":\"\",\"tool_calls\":[{\"id\":\"t1\",\"name\":\"f\",\"arguments\":{\"a\":1}}],"
         "\"finish_reason\":"
         "\"tool_calls\",\"usage\":null,\"model\":\"cfg-model\"}"},
        {"openai",
         "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
         "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
         FR_E_STREAM_TRUNCATED, "[Hel][lo]", "openai: stream cut after 2 chunks"},
        {"openai",
         "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
         "data: [DONE]", /* the terminator itself cut before its blank line */
         FR_E_STREAM_TRUNCATED, "[Hel]", "openai: stream cut after 1 chunks"},
        {"openai", "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
         FR_E_UNAVAILABLE, "", "openai: boom (server_error)"},
        {"openai", "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]\n\n", FR_E_BAD_RESPONSE,
         "", "openai: stream chunk 1 is not valid JSON"},
        {"anthropic",
         "event: message_start\ndata: "
         "{\"type\":\"message_start\",\"message\":{\"model\":\"claude-s\",\"usage\":"
         "{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
         "event: ping\ndata: {\"type\":\"ping\"}\n\n"
         "event: content_block_start\ndata: "
         "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
         "{\"type\":\"text\",\"text\":\"\"}}\n\n"
         "event: content_block_delta\ndata: "
         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
         "{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n"
         "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
         "event: content_block_start\ndata: "
         "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
         "{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"f\",\"input\":{}}}\n\n"
         "event: content_block_delta\ndata: "
         "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
         "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\": \"}}\n\n"
         "event: content_block_delta\ndata: "
         "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
         "{\"type\":\"input_json_delta\",\"partial_json\":\"2}\"}}\n\n"
         "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
         "event: message_delta\ndata: "
         "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
         "\"usage\":{\"output_tokens\":12}}\n\n"
         "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
         FR_OK, "[Hi ]",
         "{\"text\":\"Hi "
         "\",\"tool_calls\":[{\"id\":\"tu1\",\"name\":\"f\",\"arguments\":{\"q\":2}}],\"finish_"
         "reason\":"
         "\"tool_calls\",\"usage\":{\"input_tokens\":9,\"output_tokens\":12},\"model\":\"claude-"
         "s\"}"},
        {"anthropic",
         "event: message_start\ndata: "
         "{\"type\":\"message_start\",\"message\":{\"model\":\"c\"}}\n\n"
         "event: content_block_delta\ndata: "
         "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
         "\"text\":\"a\"}}\n\n"
         "event: message_delta\ndata: "
         "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n",
         FR_E_STREAM_TRUNCATED, "[a]", "anthropic: stream cut after 3 chunks"},
        {"anthropic",
         "event: error\ndata: "
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"
         "\n\n",
         FR_E_OVERLOADED, "", "anthropic: Overloaded (overloaded_error)"},
        {"gemini",
         "data: "
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}],"
         "\"usageMetadata\":{\"promptTokenCount\":3}}\r\n\r\n"
         "data: "
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},"
         "\"finishReason\":"
         "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2},"
         "\"modelVersion\":\"g-s\"}\r\n\r\n",
         FR_OK, "[Hel][lo]",
         "{\"text\":\"Hello\",\"tool_calls\":[],\"finish_reason\":\"stop\",\"usage\":{\"input_"
         "tokens\":3,"
         "\"output_tokens\":2},\"model\":\"g-s\"}"},
        {"gemini",
         "data: "
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}]}\n\n",
         FR_E_STREAM_TRUNCATED, "[Hel]", "gemini: stream cut after 1 chunks"},
        {"gemini", "", FR_E_STREAM_TRUNCATED, "", "gemini: stream cut after 0 chunks"},
    };
    /* Every case gives the same chunks and result however the host splits the body:
     * not streamed at all (0), byte by byte, in small pieces, in one piece. */
    static const size_t splits[] = {0, 1, 2, 3, 7, 64, 1 << 20};
    setup_key();
    for (size_t i = 0; i < PU_COUNT(cases); i++) {
        for (size_t k = 0; k < PU_COUNT(splits); k++) {
            provider p;
            ASSERT_STATUS(provider_open(&p, cases[i].plugin, base_kv), FR_OK);
            fr_call *c = call_new(200, cases[i].body);
            c->split = splits[k];
            const char *out = NULL;
            fr_status st =
                run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1, &out);
            if (st != cases[i].want || strcmp(c->chunks, cases[i].chunks) != 0)
                fprintf(stderr, "\nstream case %zu (%s), split %zu: %s %s\n", i, cases[i].plugin,
                        splits[k], c->chunks, c->error);
            ASSERT_STATUS(st, cases[i].want);
            ASSERT_STR(c->chunks, cases[i].chunks);
            if (st == FR_OK)
                ASSERT_STR(out, cases[i].response_or_error);
            else
                ASSERT_CONTAINS(c->error, cases[i].response_or_error);
            call_free(c);
            provider_close(&p);
        }
    }

    /* The connection breaks mid-stream: after events arrived that is a truncated stream
     * (whatever the split), before any it stays a network error. */
    static const struct {
        size_t cut_at, split;
        fr_status want;
        const char *chunks, *error;
    } cuts[] = {
        {180, 0, FR_E_STREAM_TRUNCATED, "[Hel]",
         "openai: stream cut after 2 chunks: the connection failed (network error) mid-stream"},
        {180, 1, FR_E_STREAM_TRUNCATED, "[Hel]", "openai: stream cut after 2 chunks"},
        {180, 5, FR_E_STREAM_TRUNCATED, "[Hel]", "openai: stream cut after 2 chunks"},
        {20, 1, FR_E_NETWORK, "", "connection reset"},
    };
    for (size_t i = 0; i < PU_COUNT(cuts); i++) {
        provider p;
        ASSERT_STATUS(provider_open(&p, "openai", base_kv), FR_OK);
        fr_call *c = call_new(200, cases[0].body);
        c->cut_at = cuts[i].cut_at;
        c->split = cuts[i].split;
        const char *out;
        ASSERT_STATUS(
            run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1, &out),
            cuts[i].want);
        ASSERT_STR(c->chunks, cuts[i].chunks);
        ASSERT_CONTAINS(c->error, cuts[i].error);
        call_free(c);
        provider_close(&p);
    }

    /* The host stops the stream: its status comes back. */
    provider p;
    ASSERT_STATUS(provider_open(&p, "openai", base_kv), FR_OK);
    for (size_t k = 0; k < 2; k++) { /* parsed after http returned, and while streaming */
        fr_call *c = call_new(200, cases[0].body);
        c->stop_after = 1;
        c->split = k ? 3 : 0;
        const char *out;
        ASSERT_STATUS(
            run(&p, c, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1, &out),
            FR_E_CANCELLED);
        ASSERT_CONTAINS(c->error, "openai: streaming stopped");
        ASSERT_STR(c->chunks, "[Hel]");
        call_free(c);
    }
    provider_close(&p);
}

/* ---- Classification and helpers ------------------------------------------------------ */

static void test_classify(void)
{
    CU_ASSERT_EQUAL(pv_classify(0, "", "overloaded_error", "x"), FR_E_OVERLOADED);
    CU_ASSERT_EQUAL(pv_classify(0, "", "rate_limit_error", "x"), FR_E_RATE_LIMITED);
    CU_ASSERT_EQUAL(pv_classify(0, "RESOURCE_EXHAUSTED", "", "x"), FR_E_RATE_LIMITED);
    CU_ASSERT_EQUAL(pv_classify(0, "", "invalid_request_error", "Prompt is too long"),
                    FR_E_CONTEXT_WINDOW);
    CU_ASSERT_EQUAL(pv_classify(0, "", "", "mystery"), FR_E_UNAVAILABLE);
    CU_ASSERT_EQUAL(pv_classify(422, "", "", "This model's maximum context length is 4097 tokens"),
                    FR_E_CONTEXT_WINDOW);
    CU_ASSERT_EQUAL(pv_classify(400, "", "",
                                "The response was filtered due to the prompt triggering "
                                "Azure OpenAI's content management policy (content_filter)"),
                    FR_E_CONTENT_POLICY);
    /* Class by HTTP status wins over marks outside bad requests. */
    CU_ASSERT_EQUAL(pv_classify(429, "", "", "too many tokens per minute"), FR_E_RATE_LIMITED);

    const char *h = "HTTP/1.1 200 OK\r\nContent-Type: a\r\nX-Long-Name:   v v \r\n\r\n";
    const char *v = "";
    size_t n = 0;
    CU_ASSERT_EQUAL(frk_http_header(h, strlen(h), "x-long-name", &v, &n), 1);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(strncmp(v, "v v ", n), 0);
    CU_ASSERT_EQUAL(frk_http_header(h, strlen(h), "content", &v, &n), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("providers", NULL, NULL);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"openai request shape", test_openai_request},
        {"anthropic request shape", test_anthropic_request},
        {"gemini request shape", test_gemini_request},
        {"request validation", test_request_validation},
        {"ABI 1.2 fields on the wire", test_fields_1_2},
        {"tool_choice per vendor", test_tool_choice},
        {"unsupported fields", test_unsupported},
        {"init: keys, options", test_init},
        {"response parsing", test_responses},
        {"error classes", test_errors},
        {"Retry-After parser", test_retry_after_parser},
        {"Retry-After from responses", test_retry_after_plugin},
        {"SSE parser", test_sse_parser},
        {"streams", test_streams},
        {"classification and headers", test_classify},
    };
    for (size_t i = 0; i < PU_COUNT(tests); i++)
        CU_add_test(s, tests[i].name, tests[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
