#!/bin/sh
# deploy/compose: `docker-compose config` (Debian's docker-compose) parses the file once
# gen-keys.sh has made its secrets; deploy_check.py walks the result (2 routers on Redis,
# a worker, the control plane on a named volume, Redis AOF, Prometheus scraping every
# FluxRoute process, the collector's exporters, every option and variable one the binary
# accepts); then serve runs with the generated keys file and the shared manifests and
# providers, and the generated key runs hello.yaml.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
CHECK="$FR_SRCDIR/tests/deploy/deploy_check.py"
cp -R "$FR_SRCDIR/deploy" "$TMP/deploy"
rm -rf "$TMP/deploy/compose/secrets"
C="$TMP/deploy/compose"

check "gen-keys.sh makes the secrets" sh "$C/gen-keys.sh"
for f in api-key keys.yaml controlplane.env router.env grafana.env; do
  [ -s "$C/secrets/$f" ] || not_ok "gen-keys.sh wrote secrets/$f"
done
check "secrets/ is git-ignored" grep -qx 'secrets/' "$FR_SRCDIR/deploy/compose/.gitignore"
cp "$C/secrets/api-key" "$TMP/key1"
sh "$C/gen-keys.sh" >"$TMP/out" 2>&1
if cmp -s "$C/secrets/api-key" "$TMP/key1" && grep -q 'kept' "$TMP/out"; then
  ok "gen-keys.sh keeps existing secrets"
else
  not_ok "gen-keys.sh keeps existing secrets"
fi

if ! command -v docker-compose >/dev/null 2>&1; then
  not_ok "docker-compose config" "docker-compose not installed (Debian package docker-compose; ./bootstrap.sh installs it)"
elif (cd "$C" && docker-compose -f compose.yaml config) >"$TMP/config.yaml" 2>"$TMP/err"; then
  ok "docker-compose config parses compose.yaml"
  if python3 "$CHECK" compose "$FLUXROUTE" "$TMP/config.yaml" "$TMP/deploy/k8s/providers.yaml" \
    "$C/otel-collector.yaml" >"$TMP/check.txt" 2>&1; then
    ok "compose: the walk ($(grep -c '^ok' "$TMP/check.txt") checks)"
  else
    not_ok "compose: the walk" "$(grep -A4 '^not ok\|Traceback' "$TMP/check.txt" | head -30)"
  fi
else
  not_ok "docker-compose config parses compose.yaml" "$(head -5 "$TMP/err")"
fi
# docker-compose config without the secrets fails, naming the missing file.
rm -rf "$C/secrets.bak" && mv "$C/secrets" "$C/secrets.bak"
if command -v docker-compose >/dev/null 2>&1; then
  if (cd "$C" && docker-compose -f compose.yaml config) >/dev/null 2>"$TMP/err"; then
    not_ok "negative control: docker-compose config fails without gen-keys.sh's secrets"
  else
    ok "negative control: docker-compose config fails without gen-keys.sh's secrets"
  fi
fi
mv "$C/secrets.bak" "$C/secrets"

# The same files run: serve with the generated keys file, the example manifests and
# providers; the generated key runs hello.yaml.
start_serve --manifest-dir "$TMP/deploy/k8s/manifests" --keys "$C/secrets/keys.yaml" \
  --providers "$TMP/deploy/k8s/providers.yaml" || { not_ok "serve starts with the compose files"; finish; exit; }
ok "serve starts with the compose files"
KEY=$(cat "$C/secrets/api-key")
req POST /v1/run '{"manifest": "hello.yaml", "input": {"text": "deploy"}}' -H "Authorization: Bearer $KEY"
if [ "$code" = 200 ] && jq -e '.status == "succeeded"' "$TMP/out" >/dev/null 2>&1; then
  ok "the generated key runs hello.yaml (200 succeeded)"
else
  not_ok "the generated key runs hello.yaml (200 succeeded)" "code $code"
fi
req POST /v1/validate '{"manifest": "summarize-openai.yaml"}' -H "Authorization: Bearer $KEY"
if [ "$code" = 200 ]; then ok "summarize-openai.yaml validates on serve"; else not_ok "summarize-openai.yaml validates on serve" "code $code"; fi
req POST /v1/run '{"manifest": "hello.yaml"}' -H "Authorization: Bearer frk_wrong"
if [ "$code" = 401 ]; then ok "another key is refused (401)"; else not_ok "another key is refused (401)" "code $code"; fi
stop_serve
finish
