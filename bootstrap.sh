#!/bin/sh
# Idempotent set-up: installs missing Debian packages (as root), regenerates the build
# system and reconfigures only when their inputs changed, then builds.
# Extra configure flags: FR_CONFIGURE_FLAGS="--enable-sanitizers" ./bootstrap.sh
set -eu
cd "$(dirname "$0")"

PACKAGES="build-essential autoconf automake libtool pkg-config \
  libyaml-dev libjson-c-dev libcurl4-gnutls-dev libgnutls28-dev libmicrohttpd-dev \
  libcunit1-dev libsqlite3-dev valgrind jq curl gnutls-bin libhiredis-dev redis-server \
  prometheus python3 wrk groff-base \
  chromium"
PACKAGES="$PACKAGES python3-yaml" # tests/e2e/deploy_topology.py, deploy_metric_names.py
# tests/deploy/: docker-compose config, systemd-analyze verify
PACKAGES="$PACKAGES docker-compose systemd"
# The test suite's Node tools (tests/package.json) need npm; Debian's nodejs and npm when
# the machine has none.
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
# tests/deploy/test_deploy_k8s.sh renders deploy/k8s with kubectl: Debian's (kustomize
# v2.0.3 inside) when the machine has none.
command -v kubectl >/dev/null 2>&1 || PACKAGES="$PACKAGES kubernetes-client"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
    missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "bootstrap: missing Debian packages:$missing" >&2
    echo "bootstrap: run: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

mkdir -p .bootstrap
sum() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# autoreconf when configure.ac or any Makefile fragment changed.
am_inputs=$(find configure.ac Makefile.am core plugins tests sdk deploy -name "*.am" -o -name configure.ac -o -name Makefile.am | LC_ALL=C sort)
am_sum=$(sum $am_inputs)
if [ ! -x configure ] || [ "$(cat .bootstrap/autoreconf.sum 2>/dev/null)" != "$am_sum" ]; then
  echo "bootstrap: autoreconf -fi"
  mkdir -p m4 # AC_CONFIG_MACRO_DIR (git-ignored): aclocal warns when it is missing
  autoreconf -fi
  echo "$am_sum" > .bootstrap/autoreconf.sum
  rm -f .bootstrap/configure.sum
fi

# configure when configure or the flags changed.
flags="${FR_CONFIGURE_FLAGS:-}"
cf_sum=$(printf '%s\n%s\n' "$(sum configure sdk/fluxroute.pc.in)" "$flags" | sha256sum | cut -d' ' -f1)
if [ ! -f config.status ] || [ "$(cat .bootstrap/configure.sum 2>/dev/null)" != "$cf_sum" ]; then
  echo "bootstrap: ./configure $flags"
  # configure's libtool checks run `rm -f core`, which complains here because core/ is our
  # source directory: that line is noise; anything else configure says is shown.
  # shellcheck disable=SC2086
  if ! ./configure -q $flags 2>.bootstrap/configure.err; then
    cat .bootstrap/configure.err >&2
    exit 1
  fi
  grep -v "^rm: cannot remove 'core': Is a directory$" .bootstrap/configure.err >&2 || true
  # Other flags (e.g. sanitizers on or off) need every object rebuilt.
  [ -f .bootstrap/configure.sum ] && make -s clean >/dev/null 2>&1 || true
  echo "$cf_sum" > .bootstrap/configure.sum
fi

# The test suite's Node tools (tests/package.json: @redocly/cli for tests/e2e_openapi.sh),
# exactly as tests/package-lock.json pins them, when either file changed.  Quiet: npm's
# output is shown only when it fails.
npm_sum=$(sum tests/package.json tests/package-lock.json)
if [ ! -d tests/node_modules ] || [ "$(cat .bootstrap/npm.sum 2>/dev/null)" != "$npm_sum" ]; then
  echo "bootstrap: npm ci --prefix tests"
  if ! npm ci --prefix tests --no-audit --no-fund --loglevel=error >.bootstrap/npm.log 2>&1; then
    cat .bootstrap/npm.log >&2
    exit 1
  fi
  echo "$npm_sum" > .bootstrap/npm.sum
fi

make -s -j"$(nproc)"
