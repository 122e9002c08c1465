/* The routes the web console needs (issue 28), beside the runs API:
 *   GET  /v1/manifests          the caller's namespace's named manifests
 *   GET  /v1/manifests/{name}   one of them: {name, text, valid, errors, graph}
 *   POST /v1/debug              {a, b}: two run ids or traces, compared as `fluxroute
 *                               debug --json` compares two trace files
 *   GET  /v1/usage              the caller's tenant's usage and current invoice, asked of
 *                               the control plane with the caller's own API key
 *   GET  /v1/whoami             the caller's identity and what its role may do
 * (What GET /v1/runs/{id} adds for it, the run's manifest name and input, is
 * fr__run_json_add_console in serve_records.h.)
 *
 * Every handler fills `out` (fr_reply, core/http/http.h); none keeps a pointer it was given.
 * Thread-safe: they share nothing but what serve_runs.c and the control-plane client lock. */
#ifndef FR_CORE_SERVE_CONSOLE_H
#define FR_CORE_SERVE_CONSOLE_H

#include <json-c/json.h>

#include "serve/serve.h"

struct fr_cp_client;

/* GET /v1/manifests (`name` NULL) and GET /v1/manifests/{name}.  Only files of the manifest
 * directory whose router.namespace is the caller's are listed or shown: any other name is
 * 404 manifest_not_found (the answer POST /v1/run gives), a malformed one 400
 * bad_manifest_name.  The errors are POST /v1/validate's for the same manifest; the graph
 * is {nodes: [{id, agent, level, depends_on}], edges: [{from, to}]} with `level` the
 * step's dependency depth (0: no dependencies), empty when the manifest does not parse. */
void fr__console_manifests(fr_runs *r, const fr_identity *who, const char *name, fr_reply *out);

/* POST /v1/debug: `body` {a, b, all?} (borrowed) where a and b are each a run id of the
 * caller's tenant (a string; the run must have been traced) or a trace document (an
 * object).  Answers 200 with fr__trace_debug's object; 400 naming the field that is wrong
 * (unknown_field, bad_request, invalid_trace), or the run lookup's 404. */
void fr__console_debug(fr_runs *r, const fr_identity *who, json_object *body, fr_reply *out);

/* GET /v1/usage[?period=YYYY-MM]: asks the control plane `cp`, with `bearer` (the caller's
 * API key, borrowed; NULL for a client certificate), for the tenant's usage (GET
 * /v1/usage?tenant_id=) and the period's invoice (GET /v1/billing/invoice), the current
 * month by default.  Answers {tenant_id, period, usage, invoice, invoice_error}; 503
 * usage_unavailable without a control plane or without an API key to ask it with; 503
 * controlplane_unavailable when it cannot be reached; 400 for a malformed period. */
void fr__console_usage(struct fr_cp_client *cp, const fr_identity *who, const char *bearer,
                       const char *period, fr_reply *out);

/* GET /v1/whoami: {key_id, tenant, namespace, role, via: "key" | "client_certificate",
 * may: {run, validate, replay, admin}} for the caller, read-only; `may` is the server's
 * policy for the role (fr__auth_allows; a manifest's rbac lists can narrow it).  Every
 * tenant role may ask; a metrics key is refused before this (it may only scrape). */
void fr__console_whoami(const fr_identity *who, fr_reply *out);

#endif
