/* Traces: a recorded run as one canonical JSON document (docs/reference.md, "The trace"):
 * format and version, run id and timestamps, the manifest's sha256 and full text, every
 * loaded plugin's name/version/ABI/sha256, the seed and the input, then the run report
 * with every attempt's effects in call order.  Secrets are scrubbed before writing.
 * Thread-safety: no shared state. */
#ifndef FR_CORE_TRACE_H
#define FR_CORE_TRACE_H

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "base/sha256.h" /* fr__sha256_hex, which used to be declared here */
#include "engine/engine.h"
#include "manifest/manifest.h"

#define FR_TRACE_FORMAT "fluxroute-trace"
/* Version 2 added `providers`; version-1 traces are still read and replayed. */
#define FR_TRACE_VERSION 2

/* The trace of a recorded run (run with opts.record = 1) as compact JSON text, written
 * directly (no json-c tree but for effects' own).  Caller frees; NULL on OOM.  Runs of one
 * pipeline may call it from several threads (its memo is locked). */
char *fr__trace_json(const fr_pipeline *p, const fr_run_result *r);

/* The same trace as a tree (its text parsed).  Caller releases it. */
json_object *fr__trace_build(const fr_pipeline *p, const fr_run_result *r);

/* Appends the members every trace of p's runs shares, from a memo kept in the pipeline
 * (built on first use and again when the secrets remembered change; secrets scrubbed):
 * part 0 `"manifest_name":...,"manifest_sha256":...,"plugins":[...],"providers":[...]`,
 * part 1 `"manifest":"..."`.  b->oom when out of memory.  Thread-safe (p->mu). */
void fr__trace_put_build(fr_bytebuf *b, const fr_pipeline *p, int part);

/* Writes a trace to `path` atomically (temporary file, then rename).  Returns 0, or -1
 * with a message in err. */
int fr__trace_write(json_object *trace, const char *path, char *err, size_t errlen);

/* Parses and checks trace text: format, version and the shape of every field replay
 * relies on.  Returns the document (caller releases), or NULL with one message in err
 * naming the offending field ("steps[2].attempts: expected an array"). */
json_object *fr__trace_parse(const char *text, size_t len, char *err, size_t errlen);

/* The run's provider definitions as recorded in a trace: one object per provider of m
 * (its YAML mapping as JSON, with the id and the plugin the run used).  Caller owns it. */
json_object *fr__trace_providers_build(const fr_manifest *m);

/* The providers a trace recorded, parsed as a providers file (checked as serve checks its
 * own), for fr__manifest_use_providers.  Returns NULL with err "" when the trace has none
 * (version 1), NULL with a message in err when they do not parse; caller frees with
 * fr__manifest_free after the pipelines built with them. */
fr_manifest *fr__trace_providers(json_object *trace, char *err, size_t errlen);

/* The plugins a pipeline uses, each once in manifest order, as a trace records them
 * ({name, version, abi, sha256}).  Caller owns it. */
json_object *fr__trace_plugins(const fr_pipeline *p);

/* The manifest's text as traces and journals embed it (secrets scrubbed; malloc'd, NULL
 * on OOM) and in sha the sha256 of exactly that text (`manifest_sha256`). */
char *fr__trace_manifest_text(const fr_manifest *m, char sha[65]);

/* Reads and parses a trace file; messages start with the path. */
json_object *fr__trace_load(const char *path, char *err, size_t errlen);

#endif
