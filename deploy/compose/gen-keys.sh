#!/bin/sh
# Makes the secrets the compose deployment needs, in deploy/compose/secrets/ (git-ignored,
# mode 0700; files 0600).  Nothing secret is committed: run this once before
# `docker-compose up`.  Existing files are kept unless --force is given.
#
#   secrets/api-key          an operator API key for tenant demo, namespace hello
#   secrets/keys.yaml        serve's keys file (--keys): that key's sha256, never the key
#   secrets/controlplane.env CONTROLPLANE_API_KEY, the control plane's admin key
#   secrets/router.env       CONTROLPLANE_SERVICE_KEY for routers and the worker, and
#                            the providers' credentials (OPENAI_API_KEY, empty: fill in)
#   secrets/grafana.env      Grafana's admin password
#
# Usage: gen-keys.sh [--force] [DIR]   (DIR default: the secrets/ folder beside this script)
# Keys are 24 random bytes from /dev/urandom in hex, with serve's prefix (frk_) or the
# control plane's (fra_); `fluxroute keys new` draws serve keys the same way.
set -eu
force=0
[ "${1:-}" = --force ] && { force=1; shift; }
dir=${1:-$(dirname "$0")/secrets}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

rand_hex() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
sha256() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
# write FILE: stdin to FILE unless it exists (and --force is not given).
write() {
  if [ -e "$dir/$1" ] && [ "$force" = 0 ]; then
    echo "gen-keys: kept $dir/$1 (--force replaces it)"
    cat >/dev/null
    return
  fi
  cat >"$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"
  echo "gen-keys: wrote $dir/$1"
}

api_key="frk_$(rand_hex)"
admin_key="fra_$(rand_hex)"
if [ ! -e "$dir/api-key" ] || [ "$force" = 1 ]; then
  printf '%s\n' "$api_key" | write api-key
  write keys.yaml <<KEYS
# serve's keys file (README, "Serving"): made by gen-keys.sh.  Add keys with
# \`fluxroute keys new --tenant T --namespace N --role R\` and send SIGHUP to the routers.
keys:
  - {id: demo-operator, sha256: $(sha256 "$api_key"), tenant: demo, namespace: hello, role: operator}
KEYS
  chmod 644 "$dir/keys.yaml" # hashes only; the containers (uid 10001) read it
else
  echo "gen-keys: kept $dir/api-key and $dir/keys.yaml (--force replaces them)"
fi
if [ ! -e "$dir/controlplane.env" ] || [ "$force" = 1 ]; then
  printf 'CONTROLPLANE_API_KEY=%s\n' "$admin_key" | write controlplane.env
  # The routers look keys up and report usage with this key.  The admin key works; a
  # service key (POST /v1/service-keys, docs/deploy.md) may do only what routers need:
  # replace it once the control plane runs.
  write router.env <<ENV
CONTROLPLANE_SERVICE_KEY=$admin_key
OPENAI_API_KEY=
ENV
else
  echo "gen-keys: kept $dir/controlplane.env and $dir/router.env (--force replaces them)"
fi
printf 'GF_SECURITY_ADMIN_USER=admin\nGF_SECURITY_ADMIN_PASSWORD=%s\n' "$(rand_hex)" |
  write grafana.env
echo "gen-keys: the API key for tenant demo is in $dir/api-key"
