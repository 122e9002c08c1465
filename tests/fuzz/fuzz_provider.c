/* libFuzzer target for the provider plugins' answer side (`make fuzz`): what a vendor
 * (or anything pretending to be one at base_url) sends back is untrusted.  The first
 * bytes of an input pick the plugin (openai, anthropic, gemini), the HTTP status and
 * whether the answer is read whole or streamed (SSE) in pieces of 1-128 bytes; the rest
 * is the answer's body.  Every answer must give a normalized response or a classified
 * error; never a crash, a leak or a hang.
 *
 * The plugins are loaded from $FR_BUILDDIR/plugins (make fuzz builds instrumented ones
 * under tests/fuzz/plugins and points FR_BUILDDIR at tests/fuzz). */
#include <stdint.h>
#include <stdlib.h>

#include "plugin_util.h"

#include "../provider_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vendor_names[] = {"openai", "anthropic", "gemini"};
static const int statuses[] = {200, 200, 200, 200, 400, 401, 408, 429, 500, 529};
static const char *const options[] = {"model",       "fuzz-model", "base_url", "http://h.test/",
                                      "api_key_env", "TEST_KEY",   NULL};
/* A request that asks for everything an answer can carry: text, tool calls, JSON (not
 * for anthropic, which refuses response_format since ABI 1.2: its answers must still be
 * reached). */
#define FUZZ_REQUEST(rf)                                                                           \
    "{\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"        \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"name\":\"w\","      \
    "\"arguments\":{\"city\":\"Paris\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","            \
    "\"content\":\"sunny\"}],\"max_tokens\":50," rf                                                \
    "\"tools\":[{\"name\":\"w\",\"description\":\"Weather\",\"parameters\":{\"type\":\"object\"}}" \
    "]"                                                                                            \
    "}"
static const char *const requests[] = {
    FUZZ_REQUEST("\"response_format\":{\"type\":\"json_object\"},"),
    FUZZ_REQUEST(""),
    FUZZ_REQUEST("\"response_format\":{\"type\":\"json_object\"},"),
};

static provider vendors[3];
static int opened[3];

static void close_vendors(void)
{
    for (int v = 0; v < 3; v++)
        if (opened[v])
            provider_close(&vendors[v]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int v = data[0] % 3;
    if (!opened[v]) {
        env_name = "TEST_KEY";
        env_value = "sk-fuzz-key-1234";
        if (provider_open(&vendors[v], vendor_names[v], options) != FR_OK)
            abort();
        if (!opened[0] && !opened[1] && !opened[2])
            atexit(close_vendors);
        opened[v] = 1;
    }
    char *body = malloc(size - 3 + 1); /* the fake host wants a terminated string */
    if (!body)
        return 0;
    memcpy(body, data + 3, size - 3);
    body[size - 3] = '\0';
    fr_call *c = call_new(statuses[data[1] % 10], body);
    c->resp_body_len = size - 3;
    if (data[1] / 10 % 2)
        c->resp_headers = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n";
    int stream = data[2] & 1;
    if (stream)
        c->split = 1 + (data[2] >> 1) % 128;
    const char *out;
    run(&vendors[v], c, requests[v], stream, &out);
    call_free(c); /* the response was allocated through the host, with the call */
    free(body);
    return 0;
}
