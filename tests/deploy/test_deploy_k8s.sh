#!/bin/sh
# deploy/k8s: `kubectl kustomize deploy/k8s` renders with Debian's kubectl (1.20, which
# embeds kustomize v2.0.3) and with the kubectl on PATH when that is another one, both to
# the same objects (up to the generated ConfigMaps' hash suffixes); deploy_check.py walks
# them: probes, non-root, read-only root, resources, seccomp, capabilities, mounts, the
# Services the URLs name, the PDB, the HPA, the NetworkPolicies, and every argument and
# environment variable of a FluxRoute container against `fluxroute ... --help`.
# Debian's kubectl: /usr/bin/kubectl from the kubernetes-client package, or
# FR_KUBECTL_DEBIAN=PATH (e.g. `apt-get download kubernetes-client && dpkg -x *.deb /tmp/kc`,
# then FR_KUBECTL_DEBIAN=/tmp/kc/usr/bin/kubectl).
. "${FR_SRCDIR:-.}/tests/lib.sh"
CHECK="$FR_SRCDIR/tests/deploy/deploy_check.py"
K="$FR_SRCDIR/deploy/k8s"

debian=${FR_KUBECTL_DEBIAN:-}
if [ -z "$debian" ] && [ -x /usr/bin/kubectl ] &&
  dpkg -S "$(readlink -f /usr/bin/kubectl)" 2>/dev/null | grep -q '^kubernetes-client:'; then
  debian=/usr/bin/kubectl
fi
path_kubectl=$(command -v kubectl 2>/dev/null || true)
kubectls=""
[ -n "$debian" ] && kubectls="$debian"
if [ -n "$path_kubectl" ] && [ "$(readlink -f "$path_kubectl")" != "$(readlink -f "${debian:-/nonexistent}")" ]; then
  kubectls="$kubectls $path_kubectl"
fi
if [ -z "$kubectls" ]; then
  not_ok "kubectl" "no kubectl (Debian package kubernetes-client; ./bootstrap.sh installs it when no kubectl exists)"
  finish
  exit
fi
if [ -z "$debian" ]; then
  echo "# NOTICE: Debian's kubectl (kustomize v2.0.3) not found; rendering with $path_kubectl only." \
    "Set FR_KUBECTL_DEBIAN to check the v2.0.3 syntax."
fi

first=""
n=0
for k in $kubectls; do
  n=$((n + 1))
  ver=$("$k" version --client 2>/dev/null | head -2 | tr '\n' ' ')
  if "$k" kustomize "$K" >"$TMP/render$n.yaml" 2>"$TMP/err"; then
    ok "kubectl kustomize deploy/k8s renders with $k ($ver)"
  else
    not_ok "kubectl kustomize deploy/k8s renders with $k ($ver)" "$(head -5 "$TMP/err")"
    continue
  fi
  # The same objects whichever kustomize read it.
  sed -E 's/(fluxroute-(manifests|providers))-[a-z0-9]{10}/\1-HASH/' "$TMP/render$n.yaml" |
    python3 -c 'import sys, yaml, json; print(json.dumps(sorted([d for d in yaml.safe_load_all(sys.stdin) if d], key=lambda d: (d["kind"], d["metadata"]["name"])), sort_keys=True, indent=1))' \
      >"$TMP/norm$n.json"
  if [ -z "$first" ]; then
    first=$n
  elif cmp -s "$TMP/norm$first.json" "$TMP/norm$n.json"; then
    ok "both kustomize versions render the same objects"
  else
    not_ok "both kustomize versions render the same objects" "$(diff "$TMP/norm$first.json" "$TMP/norm$n.json" | head -20)"
  fi
done
[ -n "$first" ] || { finish; exit; }

if python3 "$CHECK" k8s "$FLUXROUTE" "$TMP/render$first.yaml" "$K/servicemonitor.yaml" \
  "$K/providers.yaml" "$FR_SRCDIR/docs/deploy.md" >"$TMP/check.txt" 2>&1; then
  ok "k8s: the walk over the rendered objects ($(grep -c '^ok' "$TMP/check.txt") checks)"
else
  not_ok "k8s: the walk over the rendered objects" "$(grep -A4 '^not ok\|Traceback' "$TMP/check.txt" | head -40)"
fi

# Negative controls: the walk fails on a router without probes, one running as root, and
# one given an option serve does not take.
python3 - "$TMP/render$first.yaml" "$TMP" <<'PY'
import sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
def router(objs):
    return [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "fluxroute-router"][0]["spec"]["template"]["spec"]
muts = {
    "noprobe": lambda s: s["containers"][0].pop("readinessProbe"),
    "root": lambda s: s["securityContext"].update(runAsNonRoot=False, runAsUser=0),
    "badarg": lambda s: s["containers"][0]["args"].extend(["--no-such-option", "1"]),
    "badenv": lambda s: s["containers"][0]["env"].append({"name": "ROUTER_NO_SUCH_VAR", "value": "1"}),
    "nomanifests": lambda s: s["containers"][0]["volumeMounts"].pop(0),
}
for name, f in muts.items():
    o = yaml.safe_load_all(open(sys.argv[1]))
    o = [x for x in o if x]
    f(router(o))
    yaml.safe_dump_all(o, open("%s/mut-%s.yaml" % (sys.argv[2], name), "w"))
PY
for m in noprobe root badarg badenv nomanifests; do
  if python3 "$CHECK" k8s "$FLUXROUTE" "$TMP/mut-$m.yaml" "$K/servicemonitor.yaml" \
    "$K/providers.yaml" "$FR_SRCDIR/docs/deploy.md" >"$TMP/check.txt" 2>&1; then
    not_ok "negative control: the walk fails on a router mutated ($m)"
  else
    ok "negative control: the walk fails on a router mutated ($m): $(grep -m1 '^not ok' "$TMP/check.txt" | cut -c1-100)"
  fi
done
finish
