#!/bin/sh
# docs/openapi/ against the servers: both documents lint clean with the @redocly/cli that
# tests/package.json pins; every path and method they document is answered by the real
# `fluxroute serve` and `fluxroute controlplane` (neither 405 nor their "no route" 404);
# and nothing else is: every other method of a documented path is 405 (or the no-route
# 404), and undocumented paths are the no-route 404.  A path item marked
# `x-fluxroute-any-method: true` is one the server answers whatever the method (the
# probes), which is checked instead.  127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
DOCS="$FR_SRCDIR/docs/openapi"
REDOCLY="$FR_SRCDIR/tests/node_modules/.bin/redocly"
# No telemetry, no update check: the linter makes no network request.
REDOCLY_TELEMETRY=off
REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_TELEMETRY REDOCLY_SUPPRESS_UPDATE_NOTICE
CP_PID=""
stop_cp() {
  if [ -n "$CP_PID" ]; then kill -TERM "$CP_PID" 2>/dev/null; wait "$CP_PID" 2>/dev/null; fi
  CP_PID=""
}
trap 'stop_serve; stop_cp; rm -rf "$TMP"' EXIT

# ---- (a) the documents validate ----------------------------------------------------------
for doc in serve controlplane; do
  if [ ! -x "$REDOCLY" ]; then
    echo "ok - redocly lint docs/openapi/$doc.yaml # SKIP tests/node_modules is absent (./bootstrap.sh runs npm ci --prefix tests)"
    continue
  fi
  lrc=0
  timeout 120 "$REDOCLY" lint --config "$DOCS/redocly.yaml" --format=stylish "$DOCS/$doc.yaml" \
    >"$TMP/lint" 2>&1 || lrc=$?
  if [ "$lrc" = 0 ] && ! grep -qiw 'warning' "$TMP/lint"; then
    ok "redocly lint docs/openapi/$doc.yaml: valid, no warnings"
  else
    not_ok "redocly lint docs/openapi/$doc.yaml: valid, no warnings" "exit $lrc" \
      "$(head -40 "$TMP/lint")"
  fi
done

# The documents as JSON for the probes: PyYAML when there is one, else redocly's bundle.
to_json() { # DOC
  python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))' \
    "$DOCS/$1.yaml" "$TMP/$1.json" 2>/dev/null && return 0
  [ -x "$REDOCLY" ] &&
    timeout 120 "$REDOCLY" bundle "$DOCS/$1.yaml" --ext json -o "$TMP/$1.json" >/dev/null 2>&1
}
if ! to_json serve || ! to_json controlplane; then
  echo "ok - routes of docs/openapi/ against the servers # SKIP neither PyYAML nor tests/node_modules to read YAML"
  finish
  exit
fi

# ---- the documents name every route the routing code has, and mark every alias --------------
# A cross-check against the source, so that a route missing from a document is caught even
# though no probe below would ask for it: serve's route() compares whole paths ("/v1/run",
# a prefix "/v1/runs/", a suffix "/trace"); the control plane's dispatch compares path
# segments (known[] for the first, strcmp(seg[N], "name") for the others).
timeout 60 python3 - "$TMP/serve.json" "$TMP/controlplane.json" "$FR_SRCDIR/core" \
  >"$TMP/static" 2>&1 <<'PY'
import json, re, sys

serve, cp = (json.load(open(p))["paths"] for p in sys.argv[1:3])
core = sys.argv[3]


def check(good, what, why=""):
    print(("ok - " if good else "not ok - ") + what + ("\n#   " + why if why and not good else ""))


def function(path, head):
    text = open(path).read()
    at = text.find(head)
    return text[at:text.find("\n}\n", at)] if at >= 0 else ""


# serve: every path literal of route() and of the metrics route.
src = function(core + "/serve/serve.c", "static void route(") + function(
    core + "/serve/serve_metrics.c", "void fr__serve_metrics_route(")
lits = sorted(set(re.findall(r'"(/[a-z0-9/_.-]*)"', src)))
check(len(lits) >= 10, "serve: the routing code's paths are found (%d)" % len(lits), str(lits))
for lit in lits:
    if lit.endswith("/"):
        good = any(p.startswith(lit) and len(p) > len(lit) for p in serve)
    else:
        # A whole path, or the suffix compared after a parameter ("/trace").
        good = lit in serve or any(p.endswith(lit) and "}/" in p for p in serve)
    check(good, "serve.yaml documents the routed path %s" % lit)

# The control plane: first segments and named segments, under /v1.
src = open(core + "/controlplane/controlplane.c").read() + open(
    core + "/controlplane/cp_metering.c").read()
m = re.search(r"known\[\]\s*=\s*\{([^}]*)\}", src)
segs = [(0, s) for s in re.findall(r'"([^"]+)"', m.group(1))] if m else []
segs += [(int(i), s) for i, s in re.findall(r'strcmp\(seg\[(\d)\], "([^"]+)"\)', src)]
segs = sorted(set(segs))
check(len(segs) >= 12, "controlplane: the routing code's segments are found (%d)" % len(segs),
      str(segs))
v1 = [p[len("/v1/"):].split("/") for p in cp if p.startswith("/v1/")]
for i, s in segs:
    check(any(len(p) > i and p[i] == s for p in v1),
          "controlplane.yaml documents a /v1 route with segment %d \"%s\"" % (i, s))

# Aliases: each /v1 route has its unprefixed twin (and each twin its /v1 route) with the same
# methods; the one of each pair that is not the route to use is deprecated and names it.
METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
pairs = [(p, p[3:]) for p in cp if p.startswith("/v1/")]
pairs += [(p, p[3:]) for p in serve if p.startswith("/v1/") and p[3:] in serve]
for doc, name in ((serve, "serve.yaml"), (cp, "controlplane.yaml")):
    for p in doc:
        if doc is cp:
            twin = p[3:] if p.startswith("/v1/") else "/v1" + p
            check(twin in doc, "%s: %s has its twin %s" % (name, p, twin))
for v, bare in pairs:
    doc, name = (cp, "controlplane.yaml") if v in cp else (serve, "serve.yaml")
    if bare not in doc:
        continue
    # The probes keep their unprefixed path; every other route is used with /v1.
    use, alias = (bare, v) if bare in ("/healthz", "/readyz") else (v, bare)
    mu = [m for m in METHODS if m in doc[use]]
    ma = [m for m in METHODS if m in doc[alias]]
    check(mu == ma, "%s: %s takes the methods of %s" % (name, alias, use), "%s vs %s" % (ma, mu))
    for m in ma:
        op = doc[alias][m]
        check(op.get("deprecated") is True and use in op.get("description", ""),
              "%s: %s %s is deprecated and names %s" % (name, m.upper(), alias, use))
PY
cat "$TMP/static"
passed=$((passed + $(grep -c '^ok - ' "$TMP/static")))
failed=$((failed + $(grep -c '^not ok - ' "$TMP/static")))
grep -q '^ok - ' "$TMP/static" || not_ok "the cross-check against the source ran"

# probe DOC BASE_URL AUTH_HEADER PARAMS_JSON SCENARIO PROBE_PATH...: (b) and (c) for one
# server, and every answer to a documented operation (those of (b) and the requests of the
# SCENARIO file, lines "METHOD PATH [BODY]") has a documented status and content type and,
# with Python's jsonschema, a body the documented schema accepts.  Prints one line per check.
probe() {
  timeout 300 python3 - "$@" <<'PY'
import json, re, sys, urllib.error, urllib.request

doc, base, auth, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
scenario, probes = sys.argv[5], sys.argv[6:]
spec = json.load(open(doc))
OPS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
TRY = ["GET", "POST", "PUT", "PATCH", "DELETE"]
name = doc.rsplit("/", 1)[-1].replace(".json", ".yaml")
try:
    import jsonschema
except ImportError:
    jsonschema = None
    print("ok - %s: answers against the schemas # SKIP python3 has no jsonschema" % name)


def send(method, path, body=b"{}"):
    """(status, error code, message, content type, body) of METHOD PATH, with a key (and
    a JSON body for POST, PUT and PATCH)."""
    h = dict([auth.split(": ", 1)])
    data = None
    if method in ("POST", "PUT", "PATCH"):
        data = body
        h["Content-Type"] = "application/json"
    rq = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(rq, timeout=20) as r:
            status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
    except Exception as e:  # no answer at all
        return 0, "", str(e), "", b""
    try:
        err = json.loads(body)["error"]
        return status, err.get("code", ""), err.get("message", ""), ctype, body
    except Exception:
        return status, "", "", ctype, body


def no_route(st):
    """The server's answer for a path no route takes: 404 not_found "no route ..."."""
    return st[0] == 404 and st[1] == "not_found" and re.match(
        r"no (route|such route|such resource)\b", st[2]) is not None


def fill(path):
    return re.sub(r"\{([^}]+)\}", lambda m: params.get(m.group(1), "x"), path)


def show(st):
    return "HTTP %s %s %s" % st[:3]


def check(good, what, why):
    print(("ok - " if good else "not ok - ") + what + ("" if good else "\n#   " + why))


def resolve(node):
    """The node with every local $ref replaced by its target (siblings kept)."""
    if isinstance(node, list):
        return [resolve(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        merged = dict(resolve(target))
        merged.update({k: resolve(v) for k, v in node.items() if k != "$ref"})
        return merged
    return {k: resolve(v) for k, v in node.items()}


def answer_documented(method, template, url, st):
    """Checks that the answer's status, content type and body are the document's."""
    op = resolve(spec["paths"][template][method.lower()])
    what = "%s: %s %s answers as documented (%s)" % (name, method, url, show(st))
    resp = op["responses"].get(str(st[0])) or op["responses"].get("default")
    if resp is None:
        return check(False, what, "status %s is not among %s" % (st[0], sorted(op["responses"])))
    content = resp.get("content")
    if not content or method == "HEAD":
        return check(True, what, "")
    ctype = st[3].split(";")[0].strip()
    if ctype not in content:
        return check(False, what, "content type %r is not among %s" % (st[3], sorted(content)))
    if jsonschema is None:
        return check(True, what, "")
    try:
        body = json.loads(st[4]) if ctype == "application/json" else st[4].decode()
        jsonschema.Draft202012Validator(content[ctype].get("schema", {})).validate(body)
        check(True, what, "")
    except Exception as e:
        check(False, what, "%s\n#   body: %s" % (str(e).split("\n")[0], st[4][:300]))


def template_of(path):
    for t in spec["paths"]:
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)), path):
            return t
    return None


for path, item in spec["paths"].items():
    url = fill(path)
    documented = [m.upper() for m in OPS if m in item]
    any_method = item.get("x-fluxroute-any-method", False)
    for m in documented:
        st = send(m, url)
        check(st[0] not in (0, 405) and not no_route(st),
              "%s: %s %s is answered (%s)" % (name, m, path, show(st)), "got " + show(st))
        answer_documented(m, path, url, st)
    for m in TRY:
        if m in documented:
            continue
        st = send(m, url)
        if any_method:
            check(st[0] not in (0, 404, 405),
                  "%s: %s %s is answered alike (x-fluxroute-any-method)" % (name, m, path),
                  "got " + show(st))
        else:
            check(st[0] == 405 or no_route(st),
                  "%s: %s %s (undocumented) is 405 or no route" % (name, m, path),
                  "got " + show(st))
for path in probes:
    for m in ("GET", "POST", "DELETE"):
        st = send(m, path)
        check(no_route(st), "%s: %s %s (no such route) is the no-route 404" % (name, m, path),
              "got " + show(st))
for line in open(scenario):
    if not line.strip() or line.startswith("#"):
        continue
    parts = line.rstrip("\n").split(" ", 2)
    m, url = parts[0], parts[1]
    t = template_of(url.split("?")[0])
    if t is None or m.lower() not in spec["paths"][t]:
        check(False, "%s: the scenario's %s %s is documented" % (name, m, url), "it is not")
        continue
    answer_documented(m, t, url, send(m, url, parts[2].encode() if len(parts) > 2 else b""))
PY
}
count() { # counts the lines probe printed into passed/failed, and prints them
  cat "$TMP/probe"
  passed=$((passed + $(grep -c '^ok - ' "$TMP/probe")))
  failed=$((failed + $(grep -c '^not ok - ' "$TMP/probe")))
  grep -q '^ok - ' "$TMP/probe" || not_ok "$1: the probe ran" "$(cat "$TMP/probe.err")"
}

# ---- (b) and (c): serve ------------------------------------------------------------------
mkdir -p "$TMP/m"
cp "$FR_SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
cat >"$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-admin, sha256: $(sha oa-admin-key), tenant: acme, namespace: acme, role: admin}
YAML
KEY="Authorization: Bearer oa-admin-key"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1

# What the document says of POST /v1/run beyond its route: Location on 202, SSE.
req POST /v1/run '{"manifest": "echo.yaml", "async": true}' -H "$KEY"
expect_code "serve: async run" 202
check "serve: 202 carries Location: /v1/runs/{id}" grep -qi '^Location: /v1/runs/[0-9a-f-]*' "$TMP/headers"
RUN_ID=$(jq -r .run_id "$TMP/out")
req POST /v1/run '{"manifest": "echo.yaml"}' -H "$KEY" -H "Accept: text/event-stream"
expect_code "serve: streamed run" 200
check "serve: the stream is text/event-stream" grep -qi '^Content-Type: text/event-stream' "$TMP/headers"
check "serve: the stream starts with event: run" sh -c "head -1 '$TMP/out' | grep -qx 'event: run'"
check "serve: the stream ends with the report" grep -q '^event: report' "$TMP/out"
req GET /metrics "" -H "$KEY"
check "serve: /metrics is text/plain" grep -qi '^Content-Type: text/plain' "$TMP/headers"

req POST /v1/run '{"manifest": "echo.yaml", "trace": true}' -H "$KEY"
TRACED=$(jq -r .run_id "$TMP/out")
cat >"$TMP/scenario" <<SCENARIO
POST /v1/run {"manifest": "echo.yaml", "input": {"x": 1}, "seed": 7}
POST /v1/run {"manifest": "nope.yaml"}
POST /v1/run {"manifest": "../echo.yaml"}
POST /v1/run {"manifest": "echo.yaml", "inputs": 1}
POST /v1/run {"manifest": "echo.yaml"
POST /v1/run {"manifest_yaml": "router: {namespace: beta}\\nagents: [{id: e, plugin: echo}]\\npipeline: [{step: s, agent: e}]\\n"}
POST /run {"manifest": "echo.yaml"}
POST /v1/validate {"manifest": "echo.yaml"}
POST /v1/validate {"manifest_yaml": "router: {namespace: acme}\\nagents: 3\\n"}
POST /v1/replay {"run_id": "$TRACED"}
POST /v1/replay {"run_id": "no-such-run"}
POST /v1/replay {"trace_path": "/etc/passwd"}
POST /v1/replay {"trace": {"format": "fluxroute-trace"}}
GET /v1/runs?status=succeeded&limit=1
GET /v1/runs?limit=0
GET /v1/runs/$TRACED
GET /v1/runs/$TRACED/trace
GET /v1/manifests
GET /v1/manifests/echo.yaml
GET /v1/manifests/nope.yaml
GET /v1/manifests/..%2Fkeys.yaml
POST /v1/debug {"a": "$TRACED", "b": "$TRACED", "all": true}
POST /v1/debug {"a": "$TRACED", "b": "no-such-run"}
POST /v1/debug {"a": 1, "b": {}}
GET /v1/usage
GET /v1/usage?period=2026-13
GET /v1/whoami
DELETE /v1/runs/$TRACED
SCENARIO
probe "$TMP/serve.json" "$SERVE_URL" "$KEY" "{\"id\": \"${RUN_ID:-x}\"}" "$TMP/scenario" \
  /v1/secret /v1/runs/x/y/z /admin /v1 /v1/runs/ /v1/run/x /metrics/x /healthz/x /v2/run \
  >"$TMP/probe" 2>"$TMP/probe.err"
count serve
stop_serve

# ---- (b) and (c): the control plane ------------------------------------------------------
DB="$TMP/cp.db"
fr controlplane create-admin-key --db "$DB"
ADMIN=$(head -1 "$TMP/out")
: >"$TMP/cp.out"
"$FLUXROUTE" controlplane --db "$DB" --addr 127.0.0.1:0 >"$TMP/cp.out" 2>"$TMP/cp.err" &
CP_PID=$!
CP_URL=""
for _ in $(seq 1 600); do # 30 s
  CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out")
  [ -n "$CP_URL" ] && break
  kill -0 "$CP_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$CP_URL" ] || { not_ok "controlplane starts" "$(cat "$TMP/cp.err")"; finish; exit; }
cp_req() { # METHOD PATH [DATA] [CURL ARGS...]: sets $code (for expect_code), body in $TMP/out
  cp_m=$1 cp_p=$2 cp_d=${3:-}
  if [ $# -ge 3 ]; then shift 3; else shift $#; fi
  # shellcheck disable=SC2034
  code=$(curl -s --max-time 20 -o "$TMP/out" -w '%{http_code}' -X "$cp_m" \
    ${cp_d:+--data-binary "$cp_d"} "$@" "$CP_URL$cp_p")
}
cp_req POST /v1/tenants '{"id": "acme", "name": "Acme"}' -H "Authorization: Bearer $ADMIN"
expect_code "controlplane: tenant acme" 201
cp_req GET /v1/tenants "" -H "X-API-Key: $ADMIN"
expect_code "controlplane: X-API-Key authenticates" 200
cp_req GET /v1/tenants
expect_code "controlplane: no key" 401

EV='"idempotency_key": "e1", "occurred_at": "2024-01-05T12:00:00Z", "kind": "provider_call"'
SLA='"requests": 10, "errors": 1, "latency_ms_p50": 3, "latency_ms_p99": 9'
cat >"$TMP/scenario" <<SCENARIO
POST /v1/tenants {"id": "acme"}
POST /v1/tenants {"id": "Not Valid"}
POST /v1/tenants/acme/keys {"role": "viewer"}
GET /v1/tenants/acme/keys
GET /v1/tenants?q=ac&page=1&page_size=500
POST /v1/billing/rates {"effective_from": "2024-01-01", "prices": [{"model": "*", "input_per_mtok": 1000000, "output_per_mtok": 2000000, "per_run": 1000}]}
GET /v1/billing/rates
POST /v1/usage {$EV, "tenant": "acme", "model": "m", "input_tokens": 10, "output_tokens": 5}
POST /v1/usage [{$EV, "tenant": "nobody"}]
POST /v1/usage {"sla": {$SLA, "window_start": "2024-01-05T00:00:00Z", "window_end": "2024-01-05T00:01:00Z"}}
POST /usage {"events": [{$EV, "tenant_id": "acme", "invocations": 1}]}
GET /v1/usage?tenant_id=acme
GET /v1/billing/invoice?tenant_id=acme&period=2024-01
GET /v1/billing/invoice?tenant_id=acme&period=2024-01&format=csv
GET /v1/billing/invoice?tenant_id=acme&period=2024-13
GET /v1/billing/summary?month=2024-01
POST /v1/billing/periods/2999-01/close
GET /v1/keys/lookup?sha256=$(sha nothing)
GET /v1/sla?window=0
SCENARIO
probe "$TMP/controlplane.json" "$CP_URL" "Authorization: Bearer $ADMIN" \
  '{"id": "acme", "key_id": "no-such-key", "period": "2020-01"}' "$TMP/scenario" \
  /v1/secret /admin /v1 /v1/v1/tenants /v1/tenants/acme/x /v1/tenants/acme/keys/k/x \
  /v1/keys/a/b /v1/billing/x /v1/billing/periods/2020-01 /v1/usage/x /v1/sla/x \
  /v1/service-keys/x /tenants/acme/x >"$TMP/probe" 2>"$TMP/probe.err"
count controlplane
stop_cp
finish
