/* Helpers shared by the HTTP provider plugins (openai, anthropic, gemini): options and
 * state common to all vendors, reading the normalized request and writing vendor bodies
 * with the kit's JSON scanner and writer (in json-c's exact compact form), vendor error
 * bodies and their classification, the request/response driver and the normalized
 * response.  The vendor-neutral HTTP pieces (classes by HTTP status, Retry-After, the SSE
 * parser) are the kit's (include/fluxroute/kit.h).
 *
 * In the plugins' helper library like plugin_util.h: each plugin links its own copy and
 * exports nothing but fluxroute_plugin_v1.  Nothing here keeps shared mutable state, so
 * every function is thread-safe; per-call data lives on the stack, in pv_result or the arena.
 *
 * A vendor plugin supplies a pv_vendor table (build the wire request, parse a whole
 * response, handle one SSE event) and calls pv_init / pv_fini / pv_complete.  The
 * normalized request and response shapes are those documented in plugin.h.
 *
 * Secrets: the API key is read once in pv_init through host->secret_env, kept only in
 * the state's key header, sent as the first header of every request with
 * n_secret_headers = 1, scrubbed from vendor messages before they reach set_error, and
 * zeroed in pv_fini. */
#ifndef FR_PROVIDER_UTIL_H
#define FR_PROVIDER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <fluxroute/kit.h>
#include <fluxroute/plugin.h>

#include "plugin_util.h"

/* ---- Error classification ------------------------------------------------------------ */

/* The status for a vendor failure: by HTTP status when there is one (http > 0,
 * frk_http_status), else by the vendor's error type/code (in-stream errors).  Bad
 * requests are refined into context_window and content_policy by the code, type and
 * message. */
fr_status pv_classify(int http, const char *code, const char *type, const char *message);

/* ---- Options and state ------------------------------------------------------------- */

/* Options every HTTP provider has; each vendor's config struct starts with this. */
typedef struct pv_config {
    const char *model;
    const char *base_url;
    const char *api_key_env;
    const char *ca_file;
    int64_t timeout; /* microseconds; 0: until the call's deadline */
} pv_config;

/* The option rows for pv_config, for a vendor config struct `type` whose first member is
 * `common`.  `url` and `env` are the vendor's defaults. */
#define PV_COMMON_OPTIONS(type, url, env)                                                    \
    {"model",                                                                                \
     FR_OPT_STRING,                                                                          \
     NULL,                                                                                   \
     1,                                                                                      \
     0,                                                                                      \
     "model name sent to the vendor (a request's own \"model\" wins)",                       \
     offsetof(type, common.model)},                                                          \
        {"base_url",                                                                         \
         FR_OPT_STRING,                                                                      \
         url,                                                                                \
         0,                                                                                  \
         0,                                                                                  \
         "API base URL (no trailing path)",                                                  \
         offsetof(type, common.base_url)},                                                   \
        {"api_key_env",                                                                      \
         FR_OPT_STRING,                                                                      \
         env,                                                                                \
         0,                                                                                  \
         0,                                                                                  \
         "environment variable holding the API key (\"\": send no key, e.g. local servers)", \
         offsetof(type, common.api_key_env)},                                                \
        {"ca_file",                                                                          \
         FR_OPT_STRING,                                                                      \
         NULL,                                                                               \
         0,                                                                                  \
         0,                                                                                  \
         "PEM file of CA certificates to verify the server with (default: system CAs)",      \
         offsetof(type, common.ca_file)},                                                    \
    {                                                                                        \
        "timeout", FR_OPT_DURATION, NULL, 0, 0,                                              \
            "per-request cap (the step's deadline applies anyway); unset: none",             \
            offsetof(type, common.timeout)                                                   \
    }

struct pv_vendor;

#define PV_MAX_EXTRA_HEADERS 2

/* One provider instance.  Allocated with host->alloc(NULL, ...) in pv_init. */
typedef struct pv_state {
    const fr_host_api *host;
    const struct pv_vendor *vendor;
    const pv_config *cfg; /* the vendor's config struct starts with it */
    char *base;           /* base_url without trailing '/' (heap) */
    char *key_header;     /* "Authorization: Bearer KEY" (heap, zeroed on fini); NULL: none */
    const char *key;      /* borrowed from host->secret_env; for redaction only */
    const char *extra_headers[PV_MAX_EXTRA_HEADERS]; /* vendor's own, e.g. anthropic-version */
    char *extra_owned[PV_MAX_EXTRA_HEADERS];         /* heap copies behind extra_headers */
    size_t n_extra;
} pv_state;

/* One tool call of a response.  Every text is as C code reading json-c's strings saw it
 * (cut at a NUL); args is the arguments' JSON text (a whole answer's value as written, or
 * the fragments of a stream joined), read back by pv_result_json. */
typedef struct pv_tool {
    frk_buf id, name, args;
} pv_tool;

/* What a response says, normalized.  Filled by the vendor's parse/event callbacks. */
typedef struct pv_result {
    frk_buf text;
    pv_tool *tools; /* n_tools tool calls, in order (heap) */
    size_t n_tools, cap_tools;
    int oom;
    char finish[32];
    int64_t in_tokens, out_tokens;
    int has_usage; /* the vendor reported usage; 0: written as "usage": null (unknown, not 0) */
    char model[128];
    /* streaming */
    int done;      /* the stream's terminator arrived */
    size_t chunks; /* SSE events seen */
    int64_t cur;   /* vendor scratch: index of the tool call being streamed, -1 none */
} pv_result;

/* The vendor-specific part of a provider.  JSON arrives scanned (json_scan.h): token 0
 * is the document's value. */
typedef struct pv_vendor {
    const char *name; /* "openai": prefixes every message */
    /* Writes the wire body for the normalized request `req` (checked by
     * pv_check_request) into body, in json-c's compact form, and the URL path (appended
     * to base_url) into path.  Returns FR_OK or FR_E_BAD_REQUEST/FR_E_NOMEM with the
     * call's error set. */
    fr_status (*build)(const pv_state *s, fr_call *call, const frk_json_doc *req, const char *model,
                       int stream, frk_buf *body, char *path, size_t path_size);
    /* Parses a whole (non-streamed) 2xx JSON answer, a scanned object, into res.  FR_OK
     * or an error status with the call's error set (FR_E_BAD_RESPONSE for missing
     * fields). */
    fr_status (*parse)(const pv_state *s, fr_call *call, const frk_json_doc *wire, pv_result *res);
    /* Handles one SSE event (`event` may be "" when the stream names none; `data` is the
     * scanned JSON data, or NULL for non-JSON data such as "[DONE]", whose raw text is
     * `raw`).  Sets res->done at the terminator.  FR_OK or an error with the call's error
     * set. */
    fr_status (*event)(const pv_state *s, fr_call *call, pv_result *res, const char *event,
                       const char *raw, const frk_json_doc *data);
} pv_vendor;

/* ---- Reading and writing JSON ------------------------------------------------------ */

/* 1 when string token tok, read as C code reads json-c's strings (cut at a NUL), is lit. */
int pv_is(const frk_json_doc *d, int tok, const char *lit);

/* A separator before the next member or element: none right after an opening bracket.
 * (No JSON value ends in '{' or '[', so the last byte tells.) */
void pv_sep(frk_buf *o);

/* Starts member `key` (a plain literal) of the object being written. */
void pv_key(frk_buf *o, const char *key);

/* Writes string token tok as a C string (cut at a NUL); "" when tok is not a string. */
void pv_put_text(frk_buf *o, const frk_json_doc *d, int tok);

/* Copies member `key` of object token obj, when present and not null, as member `as`. */
void pv_put_member(frk_buf *o, const char *as, const frk_json_doc *d, int obj, const char *key);

/* Writes tool arguments token tok as an object: a JSON object as is, a string holding
 * one as that object, anything else as {}. */
void pv_put_args_object(frk_buf *o, const frk_json_doc *d, int tok);

/* The stop sequences as member `as`: an array as is, a single string as a one-element
 * array; nothing when the request has none. */
void pv_put_stop(frk_buf *o, const char *as, const frk_json_doc *req);

/* Writes the request's tools, when it has any: `head`, then each tool's name, description
 * and parameters between `open` and `close`, then `tail` (the vendor's wrapping). */
void pv_put_tools(frk_buf *b, const frk_json_doc *req, const char *head, const char *open,
                  const char *close, const char *tail);

/* 1 when the request asks for a JSON object answer (response_format.type). */
int pv_wants_json(const frk_json_doc *req);

/* ---- ABI 1.2 request fields ------------------------------------------------------------ */

/* The text of message content token tok as one string appended to out: a string as is
 * (cut at a NUL), an array of content parts as its text parts joined with `sep`
 * (image parts skipped: the vendor's writer places them), nothing for null. */
void pv_content_text(frk_buf *out, const frk_json_doc *d, int tok, const char *sep);

/* Writes message content token tok as one JSON string (pv_content_text joined with sep). */
void pv_put_content_text(frk_buf *o, const frk_json_doc *d, int tok, const char *sep);

/* 1 when content token tok is an array of content parts (ABI 1.2). */
int pv_has_parts(const frk_json_doc *d, int tok);

/* An image part's URL, split.  url is the decoded URL (heap, release with
 * pv_image_free); for a base64 data: URL ("data:MIME[;param]*;base64,DATA") mime and data
 * point into it (mime_len bytes of MIME type, data NUL-terminated); both NULL for an
 * https URL or a data: URL in another encoding. */
typedef struct pv_image {
    frk_buf url;
    const char *mime, *data;
    size_t mime_len;
    int is_data;   /* a data: URL (base64 or not) */
    int detail_ok; /* detail absent, null or "auto" (what vendors without detail do anyway) */
} pv_image;

/* Reads image part token part ({"type":"image_url","image_url":{"url","detail"}}, checked
 * by the request check).  Returns 0, or -1 on OOM. */
int pv_image_read(const frk_json_doc *d, int part, pv_image *img);

void pv_image_free(pv_image *img);

/* A vendor's own check of one image part (messages[i].content[j]), read with
 * pv_image_read: FR_OK, or a failure with the call's error set (pv_unsupported). */
typedef fr_status (*pv_image_check)(const pv_state *s, fr_call *call, const pv_image *img, size_t i,
                                    size_t j);

/* For a vendor that reads images itself (no detail, inline data in base64): refuses, per
 * the unsupported-field convention, an image part whose detail is not auto and a data:
 * URL not in base64, then asks `check` about the rest; for every image part of the
 * request, in order, until the first failure.  Returns FR_OK or that failure. */
fr_status pv_each_image(const pv_state *s, fr_call *call, const frk_json_doc *req,
                        pv_image_check check);

/* Writes image part token p (checked by pv_each_image) for a vendor that takes inline
 * base64 data and URLs: a base64 data: URL as inline_head, the media type, ,"data":, the
 * data and }}; any other URL as url_head, the URL and }} (the vendor's two shapes). */
void pv_put_image(frk_buf *o, const frk_json_doc *d, int p, const char *inline_head,
                  const char *url_head);

/* Writes text part token p as {"type":"text","text":...} (OpenAI's part, Anthropic's
 * block). */
void pv_put_text_block(frk_buf *o, const frk_json_doc *d, int p);

/* Fails the call with FR_E_BAD_REQUEST and the message "unsupported field 'FIELD': " then
 * the formatted reason, exactly (no vendor prefix: the caller finds the field by the
 * prefix; the reason names the vendor).  The convention of plugin.h for a request field
 * the vendor cannot take. */
fr_status pv_unsupported(const pv_state *s, fr_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The tool_choice of the request (ABI 1.2), when it has one that needs sending: -1 when
 * absent, null, or "auto"/"none" without tools (the default then, nothing to say).  The
 * value is checked by the request check: one of the strings "auto", "none", "required",
 * or an object {"name": string}. */
int pv_tool_choice(const frk_json_doc *req);

/* 1 when the request asks for a JSON answer shaped by a schema (response_format.type
 * "json_schema", ABI 1.2); its json_schema object token in *schema. */
int pv_wants_schema(const frk_json_doc *req, int *schema);

/* ---- Failures ------------------------------------------------------------------------ */

fr_status pv_fail(const pv_state *s, fr_call *call, fr_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets "VENDOR: message" as the call's error (with the key scrubbed) and returns st. */
fr_status pv_fail(const pv_state *s, fr_call *call, fr_status st, const char *fmt, ...);

fr_status pv_nomem(const pv_state *s, fr_call *call);

/* ---- Vendor errors ------------------------------------------------------------------- */

/* Fails the call for an in-band error object (in a stream or a 2xx body). */
fr_status pv_error_object(const pv_state *s, fr_call *call, const frk_json_doc *body, int http);

/* ---- Results ------------------------------------------------------------------------- */

/* Appends text from a whole response: string token tok (cut at a NUL), if it is one. */
void pv_text(pv_result *r, const frk_json_doc *d, int tok);

/* Streaming: appends a text delta and hands it to the host.  FR_OK, or the host's
 * status when it stops the stream (the call's error set). */
fr_status pv_delta(const pv_state *s, fr_call *call, pv_result *r, const char *t, size_t n);

/* pv_delta of string token tok (cut at a NUL); nothing when tok is not a string. */
fr_status pv_delta_text(const pv_state *s, fr_call *call, pv_result *r, const frk_json_doc *d,
                        int tok);

/* Copies the C string src into dst (size bytes), cut to fit; nothing when src is NULL. */
void pv_set(char *dst, size_t size, const char *src);

/* Adds a tool call whose id and name are string tokens of d (either may be -1: ""), its
 * arguments to follow with pv_tool_args.  Returns its index, or -1 on OOM. */
int64_t pv_tool_call(pv_result *r, const frk_json_doc *d, int id, int name);

/* Appends to tool call i's arguments: value token tok as JSON text (a whole answer's
 * arguments object), or with as_text the text of string token tok (a streamed fragment,
 * or arguments sent as JSON text), cut at a NUL.  Returns 0, or -1 on OOM. */
int pv_tool_args(pv_result *r, int64_t i, const frk_json_doc *d, int tok, int as_text);

/* ---- Request validation -------------------------------------------------------------- */

/* ---- Lifecycle ----------------------------------------------------------------------- */

/* Creates the state: reads the key from the variable named by api_key_env through
 * host->secret_env and builds the key header with printf-format key_fmt ("x-api-key: %s").
 * A missing variable fails with FR_E_CONFIG naming it.  extra: up to
 * PV_MAX_EXTRA_HEADERS vendor headers (copied), NULL-terminated. */
fr_status pv_init(const fr_host_api *host, const pv_vendor *vendor, const pv_config *cfg,
                  const char *key_fmt, const char *const *extra, void **state);

void pv_fini(void *state);

/* ---- The driver ---------------------------------------------------------------------- */

/* A stream being parsed as its bytes arrive (host->http's on_body), or all at once. */
typedef struct pv_feed {
    const pv_state *s;
    fr_call *call;
    pv_result *res;
    frk_buf pending; /* bytes after the last complete event */
    frk_buf data;    /* scratch: the data of the event being read */
    size_t fed;      /* body bytes handed over so far */
    fr_status st;    /* the first failure: nothing is parsed after it */
} pv_feed;

/* The descriptor's complete and complete_stream callbacks. */
fr_status pv_complete_whole(void *state, fr_call *call, const char *request, size_t request_len,
                            char **response, size_t *response_len);

fr_status pv_complete_stream(void *state, fr_call *call, const char *request, size_t request_len,
                             char **response, size_t *response_len);

/* Usage counters: integer member `key` of object token obj, or 0 (missing counts are not
 * an error: some compatible servers omit them). */
int64_t pv_int(const frk_json_doc *d, int obj, const char *key);

/* Usage object token u of an answer or stream chunk, when there is one (u >= 0): its
 * counters `in` and `out` (pv_int) into res, and res->has_usage set.  An answer with no
 * usage object at all leaves has_usage 0: the normalized response says "usage": null. */
void pv_usage(pv_result *res, const frk_json_doc *d, int u, const char *in, const char *out);

#endif /* FR_PROVIDER_UTIL_H */
