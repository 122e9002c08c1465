/* FluxRoute plugin ABI, version 1.
 *
 * A plugin is a shared object that exports exactly one symbol, `fluxroute_plugin_v1`, a
 * function returning a pointer to a constant descriptor (fr_plugin).  The host dlopen()s
 * the file with RTLD_NOW | RTLD_LOCAL, calls the entry function once, checks the
 * descriptor and then drives the plugin through its callbacks.
 *
 * The plugin reaches the outside world only through the host API table (fr_host_api)
 * passed to init(): clock, sleep, randomness, HTTP and provider calls all go through
 * the host, so a run can be recorded and replayed exactly.  Plugins must not call
 * time(), clock_gettime(), sleep(), rand(), socket() and friends directly.
 *
 * Data crosses the boundary as UTF-8 JSON text with explicit lengths.  Inputs are
 * borrowed for the duration of the call.  Outputs are allocated with host->alloc(call,
 * ...) from the per-invocation arena, which the host frees when the invocation ends, so
 * a plugin never frees what it returns.
 *
 * Structs only grow at the end; every field added after 1.0 is marked "since ABI 1.n",
 * and the host reads a field only when the plugin's struct_size covers it
 * (FR_PLUGIN_HAS).  Reserved slots must be NULL.
 *
 * Since ABI 1.0. */
#ifndef FLUXROUTE_PLUGIN_H
#define FLUXROUTE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/status.h>
#include <fluxroute/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The name of the one exported entry symbol. */
#define FR_PLUGIN_SYMBOL "fluxroute_plugin_v1"

/* Marks the entry function as exported even under -fvisibility=hidden. */
#define FR_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef enum fr_plugin_kind {
    FR_PLUGIN_AGENT = 1,   /* runs a pipeline step: JSON input -> JSON output */
    FR_PLUGIN_PROVIDER = 2 /* completes a normalized chat request for llm agents */
} fr_plugin_kind;

/* Option types.  The comment names the C type of the config-struct field at `offset`. */
typedef enum fr_option_type {
    FR_OPT_STRING = 1,   /* const char *, NULL when unset without default */
    FR_OPT_INT = 2,      /* int64_t */
    FR_OPT_BOOL = 3,     /* int, 0 or 1 */
    FR_OPT_DOUBLE = 4,   /* double */
    FR_OPT_DURATION = 5, /* int64_t, microseconds ("250ms", "1m30s" in manifests) */
    FR_OPT_JSON = 6      /* const char *, compact JSON text of any YAML value; NULL if unset */
} fr_option_type;

/* One declared option.  A plugin's option table is an array terminated by an entry
 * whose `name` is NULL.  The host validates each agent's or provider's `config:` mapping
 * against the table (unknown keys, wrong types and missing required options are
 * manifest errors), fills a config struct of `config_size` bytes at the given offsets,
 * applies defaults, and prints the table in `fluxroute plugins info`.  Strings in the
 * filled struct are owned by the host and stay valid until fini() returns.  A `secret`
 * option's value is never logged, printed or recorded.
 *
 * Growth: the host steps through the table by the descriptor's `option_size` (since ABI
 * 1.1; set it to sizeof(fr_option)), or by FR_OPTION_SIZE_1_0 bytes for a descriptor
 * without it (an ABI 1.0 plugin) or with 0 there.  Fields appended to fr_option in later
 * minors are read only when option_size covers them (FR_OPTION_HAS); the fields below are
 * those of ABI 1.0 and are always read.  The table is read-only to the host and must stay
 * valid while the plugin is loaded (normally a static const array).
 *
 * Since ABI 1.0. */
typedef struct fr_option {
    const char *name; /* [a-z][a-z0-9_]* */
    fr_option_type type;
    const char *default_value; /* default in manifest syntax ("100ms", "3", "true"), or NULL */
    int required;              /* 1: the manifest must set it */
    int secret;                /* 1: never printed, logged or recorded */
    const char *doc;           /* one line of documentation */
    size_t offset;             /* offsetof(your_config_struct, field) */
} fr_option;

/* The row size of an ABI 1.0 option table: the stride the host uses when the descriptor
 * has no option_size (or 0 there), and the smallest option_size it accepts.  48 bytes on
 * LP64.  Since ABI 1.1. */
#define FR_OPTION_SIZE_1_0 (offsetof(fr_option, offset) + sizeof(size_t))

/* Log levels for host->log. */
typedef enum fr_log_level {
    FR_LOG_ERROR = 0,
    FR_LOG_WARN = 1,
    FR_LOG_INFO = 2,
    FR_LOG_DEBUG = 3
} fr_log_level;

/* One invocation of a plugin callback (an attempt of a step, or a provider request made
 * on behalf of one).  Opaque; valid only during the callback that received it. */
typedef struct fr_call fr_call;

/* An HTTP request made through host->http.  All pointers are borrowed for the call. */
typedef struct fr_http_request {
    uint32_t struct_size; /* sizeof(fr_http_request) */
    const char *method;   /* "GET", "POST", ... */
    const char *url;
    const char *const *headers; /* "Name: value" strings */
    size_t n_headers;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    int64_t timeout_us;      /* 0: until the call's deadline */
    size_t n_secret_headers; /* the first n headers carry credentials: never recorded */
    const char *ca_file;     /* since ABI 1.0: PEM CA bundle to verify the server with;
                              * NULL: the system's CAs.  Read only when struct_size
                              * covers it. */
    /* Since ABI 1.0 (unreleased); read only when struct_size covers it.  Streaming: when
     * not NULL, the host hands the response body to on_body(on_body_ud, data, len) while
     * it arrives, for 2xx responses only (other statuses are just collected: their body
     * is an error document).  Called on the thread of the http call, in order, with
     * arbitrary splits (an SSE event or a UTF-8 character may span two calls), always
     * before http returns; `data` is borrowed for the callback.  The whole body is still
     * returned in resp.  Returning a status other than FR_OK stops the transfer: http
     * returns that status, with the message the callback set (set_error), or a message
     * of the host's when it set none.  When the transfer fails after the response began
     * (FR_E_NETWORK mid-body, timeout, on_body's status), resp holds what arrived.
     * Under replay the recorded body is handed over in one piece, and for a plugin
     * running with process isolation the body is handed over in one piece once the
     * response is complete (or cut): parse incrementally so that results do not depend
     * on how the body was split. */
    fr_status (*on_body)(void *ud, const char *data, size_t len);
    void *on_body_ud; /* since ABI 1.0 (unreleased): on_body's first argument */
} fr_http_request;

/* Does request `req` carry field `field` (struct_size covers it)? */
#define FR_HTTP_REQUEST_HAS(req, field) \
    ((req)->struct_size >= offsetof(fr_http_request, field) + sizeof((req)->field))

/* An HTTP response, allocated by the plugin (normally on its stack) and filled by the
 * host.  `headers` (raw header block) and `body` live in the call's arena: valid until
 * the invocation ends, never freed by the plugin.
 *
 * Growth: host->http (ABI 1.0) writes exactly the fields below, FR_HTTP_RESPONSE_SIZE_1_0
 * bytes.  host->http_ex (since ABI 1.1) takes the size of the plugin's struct and writes
 * at most that many bytes, so later minors may append fields here without a host writing
 * past an older plugin's struct.
 *
 * Since ABI 1.0. */
typedef struct fr_http_response {
    int status; /* HTTP status code */
    const char *headers;
    size_t headers_len;
    const char *body;
    size_t body_len;
} fr_http_response;

/* The size of the ABI 1.0 response: what host->http writes, and the smallest resp_size
 * host->http_ex accepts.  40 bytes on LP64.  Since ABI 1.1. */
#define FR_HTTP_RESPONSE_SIZE_1_0 (offsetof(fr_http_response, body_len) + sizeof(size_t))

/* The host API table: the plugin's only way to the outside.  The host passes it to
 * init(); it stays valid for the plugin's whole life.  Grows only at the end: check
 * `struct_size` (FR_HOST_HAS) before using a field newer than ABI 1.0.
 *
 * Unless noted, functions take the `call` the callback received, are safe to call from
 * the thread running that callback, and must not be called after it returns.  Every
 * source of nondeterminism (clock, sleep, random, HTTP, provider calls) is recorded by
 * the host per call, in call order. */
typedef struct fr_host_api {
    uint32_t struct_size;
    uint32_t abi_version;

    /* Writes one log line attributed to the call's step and attempt (call may be NULL,
     * e.g. in init).  printf-style; never put secrets in it. */
    void (*log)(fr_call *call, fr_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Allocates `size` bytes.  With a call: from its arena, freed by the host when the
     * invocation ends (do not free it).  With call == NULL: from the heap, release with
     * free_mem().  Returns NULL when memory runs out (tests inject such failures). */
    void *(*alloc)(fr_call *call, size_t size);

    /* Releases memory from alloc(NULL, ...).  NULL is ignored. */
    void (*free_mem)(void *ptr);

    /* Wall-clock time, microseconds since the Unix epoch (recorded). */
    int64_t (*clock_us)(fr_call *call);

    /* Sleeps for `us` microseconds, waking early on cancellation or deadline.  Returns
     * FR_OK after the full sleep, else FR_E_CANCELLED, FR_E_TIMEOUT (attempt timeout) or
     * FR_E_DEADLINE_EXCEEDED (run deadline): return that status from the callback. */
    fr_status (*sleep_us)(fr_call *call, int64_t us);

    /* A 64-bit random number from the call's own deterministic stream, derived from the
     * run's seed, the step and the attempt (recorded). */
    uint64_t (*random_u64)(fr_call *call);

    /* Performs an HTTP request (libcurl underneath, TLS verified).  Returns FR_OK when a
     * response arrived (any HTTP status), else FR_E_NETWORK, FR_E_TIMEOUT,
     * FR_E_CANCELLED or FR_E_DEADLINE_EXCEEDED.  `resp` is filled from the arena; exactly
     * its ABI 1.0 fields are written (FR_HTTP_RESPONSE_SIZE_1_0 bytes), so a plugin built
     * against a later minor, whose struct may be larger, should use http_ex. */
    fr_status (*http)(fr_call *call, const fr_http_request *req, fr_http_response *resp);

    /* Sends a normalized chat request (JSON) to the provider configured for the calling
     * agent (`provider:` in the manifest).  On FR_OK, *response (NUL-terminated JSON in
     * the call's arena) and *response_len are set.  On failure returns the provider's
     * status; host->set_error has already recorded its message. */
    fr_status (*provider_call)(fr_call *call, const char *request, size_t request_len,
                               char **response, size_t *response_len);

    /* Adds `value` to the plugin counter `name` ([a-z_]+), exported as
     * fluxroute_plugin_<name>_total{plugin,...}. */
    void (*metric)(fr_call *call, const char *name, double value);

    /* Microseconds left before this call must return (the smaller of the attempt timeout
     * and the run deadline); INT64_MAX when unbounded; <= 0 when already passed. */
    int64_t (*deadline_us)(fr_call *call);

    /* FR_OK while the call may go on; FR_E_CANCELLED, FR_E_TIMEOUT or
     * FR_E_DEADLINE_EXCEEDED once it must stop (return that status). */
    fr_status (*check_cancel)(fr_call *call);

    /* The 1-based attempt number of the current step. */
    int (*attempt)(fr_call *call);

    /* The id of the current step ("summarize"); borrowed, valid during the call. */
    const char *(*step_id)(fr_call *call);

    /* Sets the message reported with the status the callback returns.  printf-style;
     * the last call wins.  Never put secrets in it.  In init() pass call == NULL: the
     * message is reported with the configuration error when init() fails. */
    void (*set_error)(fr_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    /* Providers: the vendor asked to wait `delay_us` before retrying (Retry-After). */
    void (*set_retry_after)(fr_call *call, int64_t delay_us);

    /* Streaming: hands one chunk of generated text to the host as it arrives (used by
     * complete_stream).  Returns FR_OK, or a cancellation status to stop streaming. */
    fr_status (*stream_chunk)(fr_call *call, const char *text, size_t len);

    /* Reads the value of environment variable `name` holding a credential (a provider's
     * api_key_env).  The host remembers the value as secret and keeps it out of traces,
     * logs and errors.  Returns NULL when unset.  Borrowed; valid for the plugin's life. */
    const char *(*secret_env)(fr_call *call, const char *name);

    /* Since ABI 1.0 (unreleased).  Acquires the coordination lease `key` (borrowed for
     * the call; taken as "plugin:<key>" on the backend the COORDINATION_* environment
     * selects, shared by every process using it) for `ttl_us` (0: COORDINATION_TTL),
     * waiting up to `wait_us` (0: one try; never past the call's deadline) while another
     * holder has it.  On FR_OK *fencing_token is the lease's token: strictly greater than
     * every token handed out for this key before, so pass it to the resource you protect
     * and let it refuse smaller ones.  The host renews the lease in the background while
     * the call runs; if it is lost (renewal refused, backend unreachable past the TTL)
     * the call is cancelled and check_cancel()/sleep_us() return FR_E_LEASE_LOST.  The
     * lease is released when the invocation ends, if lease_release was not called first.
     * Returns FR_OK; FR_E_UNAVAILABLE when still held elsewhere after the wait (the
     * message names the holder); FR_E_CONFIG when coordination is disabled
     * (COORDINATION_ENABLED) or misconfigured; FR_E_NETWORK when the backend is
     * unreachable; FR_E_INVALID for bad arguments or a key this call already holds;
     * FR_E_CANCELLED, FR_E_TIMEOUT or FR_E_DEADLINE_EXCEEDED when the call must stop.
     * Errors also set the call's error message. */
    fr_status (*lease_acquire)(fr_call *call, const char *key, int64_t ttl_us, int64_t wait_us,
                               uint64_t *fencing_token);

    /* Since ABI 1.0 (unreleased).  Releases the lease `key` this call acquired.  Returns
     * FR_OK; FR_E_NOT_FOUND when this call holds no lease on `key`; FR_E_LEASE_LOST when
     * it had been lost meanwhile; FR_E_NETWORK when the backend could not be told (the
     * lease then expires after its TTL). */
    fr_status (*lease_release)(fr_call *call, const char *key);

    /* Since ABI 1.1 (check FR_HOST_HAS(host, http_ex) first).  Performs an HTTP request
     * exactly as http does (same statuses, recording, replay, streaming, thread and
     * ownership rules), but `resp` is the plugin's response struct of `resp_size` bytes:
     * pass sizeof *resp.  The host writes at most resp_size bytes at resp: the fields it
     * knows that fit, and zeros over the rest (fields of a later minor than the host's,
     * which the plugin therefore sees as 0).  A resp_size below FR_HTTP_RESPONSE_SIZE_1_0
     * returns FR_E_INVALID (with an error message) before any request is made, and
     * nothing is written. */
    fr_status (*http_ex)(fr_call *call, const fr_http_request *req, fr_http_response *resp,
                         size_t resp_size);

    /* Since ABI 1.2 (check FR_HOST_HAS(host, idempotency_key) first).  A stable
     * idempotency key for the next outgoing call of this attempt, to pass to vendors and
     * services that accept one (e.g. an Idempotency-Key header): 32 hex digits derived from
     * the run id, the step, the attempt and the ordinal of the key within the attempt (its
     * provider calls included), so the same call of the same run gets the same key in
     * every execution of the run, a resumed one included (`fluxroute resume`, where a call
     * whose answer was not journaled is made again).  Ask once per logical call and reuse
     * the key when retrying that call inside the attempt.  Borrowed from the call's arena:
     * valid until the callback returns.  NULL on OOM or with call == NULL. */
    const char *(*idempotency_key)(fr_call *call);
} fr_host_api;

#define FR_HOST_HAS(api, field) \
    ((api)->struct_size >= offsetof(fr_host_api, field) + sizeof((api)->field))

/* The plugin descriptor.  Returned by the entry function; must stay valid (normally a
 * static const) while the plugin is loaded. */
typedef struct fr_plugin {
    uint32_t abi_version; /* FR_ABI_VERSION the plugin was built against */
    uint32_t struct_size; /* sizeof(fr_plugin) the plugin was built with */
    fr_plugin_kind kind;
    const char *name;         /* must equal the file name without ".so" */
    const char *version;      /* the plugin's own version, e.g. "1.2.0" */
    const char *description;  /* one line, for `plugins list` */
    const fr_option *options; /* NULL-name terminated; NULL when there are none */
    size_t config_size;       /* size of the config struct the options fill; may be 0 */

    /* Creates one instance (one per agent or provider that uses the plugin).  `config`
     * is the filled config struct, borrowed until fini().  Store per-instance state in
     * *state.  `host` stays valid until fini().  Returns FR_OK or an error status
     * (reported as a load-time config error).  Called from one thread at a time. */
    fr_status (*init)(const fr_host_api *host, const void *config, void **state);

    /* Destroys an instance.  Called once per successful init(), never concurrently
     * with another callback of the same instance. */
    void (*fini)(void *state);

    /* Agents: runs one attempt of a step.  `input` is the step input JSON
     * ({"input": ..., "steps": {...}}), borrowed for the call.  On FR_OK set *output to
     * JSON text allocated with host->alloc(call, ...) and *output_len to its length.  On
     * failure return a negative status (its class drives retries) and describe it with
     * host->set_error.  May be called from several threads at once for the same
     * instance: keep per-call state on the stack or in the arena. */
    fr_status (*invoke)(void *state, fr_call *call, const char *input, size_t input_len,
                        char **output, size_t *output_len);

    /* Providers: completes one normalized chat request.  Same threading and ownership
     * rules as invoke.
     *
     * Request JSON (every member optional but messages; null means absent):
     *   model            string: the vendor's model (the provider's `model` option when absent)
     *   system           string: a system prompt before the messages
     *   messages         [{role, content, tool_calls?, tool_call_id?}], non-empty:
     *     role           "system" | "developer" (1.2) | "user" | "assistant" | "tool";
     *                    developer maps to the system prompt where the vendor has no such role
     *     content        string | null | (1.2) a non-empty array of content parts:
     *                      {"type": "text", "text": string}
     *                      {"type": "image_url", "image_url": {"url": string, "detail"?:
     *                       "auto" | "low" | "high"}}  (user messages only; url an image's
     *                       data: URL, "data:image/TYPE;base64,DATA", or an https:// URL)
     *     tool_calls     (assistant) [{id, name, arguments: object or its JSON text}]
     *     tool_call_id   (tool) the id of the call this message answers
     *   max_tokens       positive integer
     *   temperature      number
     *   top_p            (1.2) number from 0 to 1
     *   seed             (1.2) integer
     *   stop             string | [string]
     *   response_format  {"type": "text" | "json_object" | "json_schema" (1.2),
     *                     "json_schema": {name, description?, schema?, strict?} (1.2)}
     *   tools            [{name, description?, parameters?: JSON schema}]
     *   tool_choice      (1.2) "auto" | "none" | "required" | {"name": "FUNCTION"} (one of
     *                    tools; "required" and {name} need tools)
     *   user             (1.2) string: an identifier of the end user, for abuse tracking
     *   stream           boolean: the host calls complete_stream when set and available
     * Response JSON (arena memory): {text, tool_calls: [{id, name, arguments}],
     * finish_reason: "stop" | "length" | "tool_calls" | "content_filter" | vendor's,
     * usage: {input_tokens, output_tokens}, model}; usage is null when the vendor
     * reported none (unknown, not 0: the host notes it in the attempt and bills the call
     * as unknown usage).
     *
     * A request field the vendor cannot take (seed for a vendor without one, an image URL
     * where the vendor needs inline data...) is never dropped silently: return
     * FR_E_BAD_REQUEST with a message starting exactly "unsupported field 'NAME': ",
     * NAME the request field's path ("seed", "user", "response_format",
     * "messages[1].content[0].image_url"), then the reason naming the vendor.  The host
     * prefixes it with `provider "ID": ` like every provider error, and the gateway
     * answers such a failure with a 400 whose `param` is NAME.  A request the normalized
     * shape itself forbids (a wrong type, an unknown role) is FR_E_BAD_REQUEST with any
     * other message.
     *
     * The fields marked 1.2 are sent only to providers whose descriptor says ABI 1.2 or
     * later: for an older provider plugin, which would silently drop them, the host
     * refuses the call with FR_E_BAD_REQUEST and the same "unsupported field 'NAME': "
     * message (NAME "messages[1].role" for a developer message, "messages[1].content" for
     * content parts, "response_format" for json_schema). */
    fr_status (*complete)(void *state, fr_call *call, const char *request, size_t request_len,
                          char **response, size_t *response_len);

    /* Providers, optional (NULL when unsupported): like complete, but hands text to
     * host->stream_chunk as it arrives, then returns the full response. */
    fr_status (*complete_stream)(void *state, fr_call *call, const char *request,
                                 size_t request_len, char **response, size_t *response_len);

    void *reserved[8]; /* must be NULL */

    /* Since ABI 1.1: the size of one row of `options`, sizeof(fr_option) as the plugin
     * was built (set it so, always).  The host steps through the table by it, so rows may
     * grow in later minors; without the field (struct_size below it: an ABI 1.0 plugin)
     * or with 0 the stride is FR_OPTION_SIZE_1_0.  The loader refuses a value below
     * FR_OPTION_SIZE_1_0 or not a multiple of the alignment of fr_option. */
    size_t option_size;
} fr_plugin;

/* 1 when descriptor `d` is large enough to hold `field`. */
#define FR_PLUGIN_HAS(d, field) \
    ((d)->struct_size >= offsetof(fr_plugin, field) + sizeof((d)->field))

/* The row size of descriptor `d`'s option table: its option_size when it has one (not
 * 0), else FR_OPTION_SIZE_1_0.  Row i is at (const char *)d->options + i * this.  For the
 * host and tools that read a plugin's table.  Since ABI 1.1. */
#define FR_OPTION_STRIDE(d)                                                        \
    ((size_t)(FR_PLUGIN_HAS(d, option_size) && (d)->option_size ? (d)->option_size \
                                                                : FR_OPTION_SIZE_1_0))

/* Row `i` of descriptor `d`'s option table, and the row after row `o`, stepping by
 * FR_OPTION_STRIDE(d) (never by sizeof(fr_option): the plugin's rows may be larger or,
 * in a later host, smaller than the host's).  Since ABI 1.1. */
#define FR_OPTION_AT(d, i)                                          \
    ((const fr_option *)(const void *)((const char *)(d)->options + \
                                       (size_t)(i)*FR_OPTION_STRIDE(d)))
#define FR_OPTION_NEXT(d, o) \
    ((const fr_option *)(const void *)((const char *)(o) + FR_OPTION_STRIDE(d)))

/* Do the rows of descriptor `d`'s option table carry `field` (its stride covers it)?
 * For fields appended to fr_option after ABI 1.0.  Since ABI 1.1. */
#define FR_OPTION_HAS(d, field) \
    (FR_OPTION_STRIDE(d) >= offsetof(fr_option, field) + sizeof(((const fr_option *)0)->field))

/* The smallest descriptor the host accepts for ABI 1.x: every field of 1.0 before the
 * reserved slots. */
#define FR_PLUGIN_MIN_SIZE (offsetof(fr_plugin, reserved))

/* Type of the exported entry function `fluxroute_plugin_v1`. */
typedef const fr_plugin *(*fr_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* FLUXROUTE_PLUGIN_H */
