/* What the journal's backends and its resumers share (core/trace/journal.h): the header
 * of a new journal, the checks of a resume against the build loaded now, and the options
 * that continue a journaled run.  `fluxroute resume` (a file) and a queue consumer that
 * claims a run another left (Redis, core/serve/run_queue.c) both resume through these. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/bytebuf.h"
#include "base/str.h"
#include "engine/pipeline.h"
#include "trace/journal.h"
#include "trace/diff.h"
#include "trace/replay.h"
#include "trace/replay_cursor.h"
#include "trace/trace.h"

json_object *fr__journal_header_run(const char *run_id, uint64_t seed, const char *input_json)
{
    json_object *h = json_object_new_object();
    if (!h)
        return NULL;
    json_object_object_add(h, "t", json_object_new_string("header"));
    json_object_object_add(h, "format", json_object_new_string(FR_JOURNAL_FORMAT));
    json_object_object_add(h, "version", json_object_new_int(FR_JOURNAL_VERSION));
    json_object_object_add(h, "run_id", json_object_new_string(run_id));
    json_object_object_add(h, "seed", json_object_new_uint64(seed));
    json_object_object_add(h, "input", json_tokener_parse(input_json));
    return h;
}

int fr__journal_header_add_build(json_object *h, const fr_pipeline *p)
{
    /* From the pipeline's memo, as the file journal writes them. */
    fr_bytebuf b = {0};
    fr__bytebuf_append(&b, "{", 1);
    fr__trace_put_build(&b, p, 0);
    fr__bytebuf_append(&b, ",", 1);
    fr__trace_put_build(&b, p, 1);
    fr__bytebuf_append(&b, "}", 1);
    json_object *build = b.oom ? NULL : fr__report_parse_len(b.data, b.len);
    free(b.data);
    if (!build)
        return -1;
    json_object_object_foreach(build, key, val)
    {
        json_object_object_add(h, key, json_object_get(val));
    }
    json_object_put(build);
    return 0;
}

json_object *fr__journal_header_new(const fr_pipeline *p, const char *run_id, uint64_t seed,
                                    const char *input_json)
{
    json_object *h = fr__journal_header_run(run_id, seed, input_json);
    if (h && fr__journal_header_add_build(h, p) != 0) {
        json_object_put(h);
        return NULL;
    }
    return h;
}

void fr__journal_compare_builds(json_object *header, const fr_pipeline *p, json_object *changes)
{
    const fr_manifest *m = fr__pipeline_manifest(p);
    char sha[65] = "";
    free(fr__trace_manifest_text(m, sha));
    const char *rec = fr__trace_member_string(header, "manifest_sha256");
    if (rec && strcmp(rec, sha) != 0) {
        char *n = fr__xasprintf("the manifest %s differs from the journal's (sha256 %.12s... "
                                "journaled, %.12s... now)",
                                m->path, rec, sha);
        json_object_array_add(changes, json_object_new_string(n ? n : "manifest differs"));
        free(n);
    }
    /* Plugins: the notes replay gives (changed builds, plugins no longer used). */
    json_object *trace = json_object_new_object(), *v;
    if (json_object_object_get_ex(header, "plugins", &v))
        json_object_object_add(trace, "plugins", json_object_get(v));
    fr__replay_notes(trace, m->text, p, changes);
    json_object_put(trace);
}

fr_replay *fr__journal_resume_options(const fr_journal_doc *doc, unsigned executions,
                                      fr_run_options *ro)
{
    json_object *input = NULL, *seed = NULL;
    json_object_object_get_ex(doc->header, "input", &input);
    json_object_object_get_ex(doc->header, "seed", &seed);
    fr_replay *rp = fr__replay_new_resume(doc->trace);
    ro->input_json = json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN);
    ro->seed = json_object_get_uint64(seed);
    ro->has_seed = 1;
    ro->run_id = fr__trace_member_string(doc->header, "run_id");
    ro->record = 1; /* the journal is made of the recorded effects */
    ro->replay = rp;
    ro->executions = executions;
    return rp;
}

void fr__journal_mark_resume(fr_journal *j, unsigned executions)
{
    json_object *mark = fr__journal_entry("resume", NULL, -1);
    if (mark)
        json_object_object_add(mark, "execution", json_object_new_int64(executions));
    fr__journal_put(j, NULL, mark, FR_JOURNAL_STEP);
}

void fr__journal_resumed_from(fr_replay *rp, fr_run_result *res)
{
    json_object *from = rp ? fr__replay_resumed_from(rp) : NULL;
    res->resumed_from = from ? json_object_get(from) : NULL;
}

void fr__journal_mark_end(fr_journal *j, const fr_run_result *res)
{
    json_object *e = fr__journal_entry("end", NULL, -1);
    if (e)
        json_object_object_add(e, "status",
                               json_object_new_string(fr__run_status_name(res->status)));
    /* No step boundary: a journal that lost its end (the machine went down) resumes to the
     * same end without running a step. */
    fr__journal_put(j, NULL, e, FR_JOURNAL_EFFECT);
}
