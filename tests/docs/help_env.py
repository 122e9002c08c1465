#!/usr/bin/env python3
"""--help of serve, worker and controlplane against the environment the sources read.

Every variable name the C sources under core/ read (getenv("X"), and the helpers that take
a variable's name: env_or, env_word, env_dup, env_duration, fr__obs_env_truthy, and
fr__http_tls_from_env(.., "PREFIX", ..) which reads PREFIX_TLS_ENABLED, _CERT_FILE,
_KEY_FILE, _CA_FILE and _REQUIRE_CLIENT_CERT) must be listed by each command's --help,
unless the table NOT_READ below says that command does not read it, and why.  Also: every
entry of NOT_READ is still read somewhere (no stale exception), and every variable-like
name a --help shows is one the sources read (no stale documentation).

usage: help_env.py SRCDIR FLUXROUTE
"""
import re
import subprocess
import sys
from pathlib import Path

TLS_SUFFIXES = ["ENABLED", "CERT_FILE", "KEY_FILE", "CA_FILE", "REQUIRE_CLIENT_CERT"]

# Variables the command does not read, with the reason (the only place to say so).
RUN_ONLY = {
    "METRICS_ENABLED": "fluxroute run's metrics endpoint (serve has --metrics-addr)",
    "METRICS_ADDR": "fluxroute run's metrics endpoint",
    "METRICS_TLS_ENABLED": "fluxroute run's metrics endpoint",
    "METRICS_TLS_CERT_FILE": "fluxroute run's metrics endpoint",
    "METRICS_TLS_KEY_FILE": "fluxroute run's metrics endpoint",
    "METRICS_TLS_CA_FILE": "fluxroute run's metrics endpoint",
    "METRICS_TLS_REQUIRE_CLIENT_CERT": "fluxroute run's metrics endpoint",
    "TRACE_OUTPUT": "fluxroute run --trace's default",
    "FLUXROUTE_JOURNAL_DIR": "fluxroute run --journal's default (serve and worker journal no runs yet)",
    "REQUEST_ROLE": "the CLI's role (run, validate); servers take roles from keys",
    "USER": "the actor of the CLI's audit lines",
    "FLUXROUTE_HELPER": "set by the host for its own helper processes, not by an operator",
}
CONTROLPLANE_ONLY = {
    "CONTROLPLANE_DB": "fluxroute controlplane's database",
    "CONTROLPLANE_ADDR": "fluxroute controlplane's address",
    "CONTROLPLANE_API_KEY": "fluxroute controlplane's admin key",
    "CONTROLPLANE_METRICS_ADDR": "fluxroute controlplane's metrics listener",
    **{f"CONTROLPLANE_TLS_{s}": "fluxroute controlplane's TLS" for s in TLS_SUFFIXES},
}
SERVE_ONLY = {
    "ROUTER_ADDR": "serve's API address (a worker has none)",
    "ROUTER_KEYS_FILE": "serve's keys (a worker authenticates nobody)",
    "SERVE_SLA_WINDOW_S": "serve's SLA reports",
    "ROUTER_ROUTES_FILE": "serve's OpenAI gateway routes (a worker answers no HTTP requests)",
    **{f"ROUTER_TLS_{s}": "serve's API TLS" for s in TLS_SUFFIXES},
}
ENGINE = [  # what running pipelines reads: serve and worker, never the control plane
    "AUDIT_FSYNC", "AUDIT_LOG_PATH", "CIRCUIT_FAILURE_THRESHOLD", "CIRCUIT_PROBE_TIMEOUT",
    "CIRCUIT_RESET_TIMEOUT", "COORDINATION_DIR", "COORDINATION_ENABLED", "COORDINATION_MODE",
    "COORDINATION_REDIS_PREFIX", "COORDINATION_REDIS_URL", "COORDINATION_TTL",
    "DEFAULT_TIMEOUT", "FLUXROUTE_PLUGIN_PATH", "TMPDIR", "TRACE_ENABLED", "TRACE_ENDPOINT",
    "WORKER_POOL_SIZE", "ROUTER_MANIFEST_DIR", "ROUTER_PROVIDERS_FILE", "ROUTER_METRICS_ADDR",
    "ROUTER_STATE_URL", "ROUTER_STATE_PREFIX", "CONTROLPLANE_URL", "CONTROLPLANE_SERVICE_KEY",
    "CONTROLPLANE_SPOOL", "FLUXROUTE_TESTING_CLOCK_OFFSET_FILE",
]
NOT_READ = {
    "serve": {**RUN_ONLY, **CONTROLPLANE_ONLY},
    "worker": {**RUN_ONLY, **CONTROLPLANE_ONLY, **SERVE_ONLY},
    "controlplane": {**RUN_ONLY, **SERVE_ONLY,
                     **{n: "pipelines run by serve and worker" for n in ENGINE}},
}

CALL = re.compile(r'\b(?:getenv|secure_getenv|env_or|env_word|env_dup|env_duration|'
                  r'fr__obs_env_truthy)\s*\((?:[^()"]*,\s*)?"([A-Z][A-Z0-9_]+)"')
TLS = re.compile(r'fr__http_tls_from_env\s*\([^;]*?"([A-Z][A-Z0-9_]*)"')
ENV_MACRO = re.compile(r'ENV\("([A-Z_]+)"\)')  # the TLS suffixes inside http_server.c


def source_names(src):
    names = {}
    for path in sorted((src / "core").rglob("*.c")):
        text = path.read_text()
        for m in CALL.finditer(text):
            names.setdefault(m.group(1), str(path.relative_to(src)))
        for m in TLS.finditer(text):
            for s in TLS_SUFFIXES:
                names.setdefault(f"{m.group(1)}_TLS_{s}", str(path.relative_to(src)))
        if "http_server.c" in path.name:
            found = set(ENV_MACRO.findall(text))
            if found != set(TLS_SUFFIXES):
                sys.exit(f"core/http/http_server.c reads TLS variables {sorted(found)}, "
                         f"this test expects {TLS_SUFFIXES}: update TLS_SUFFIXES")
    return names


def main():
    src, fluxroute = Path(sys.argv[1]), sys.argv[2]
    names = source_names(src)
    failed = 0
    if len(names) < 30:
        print(f"not ok - found only {len(names)} variables in the sources: the patterns "
              "no longer match how they are read")
        return 1
    for cmd, not_read in NOT_READ.items():
        text = subprocess.run([fluxroute, cmd, "--help"], capture_output=True, text=True,
                              check=True).stdout
        words = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", text))
        # Names with an underscore look like variables; others (TMPDIR, USER) count when read.
        listed = {w for w in words if "_" in w or w in names}
        for name, where in sorted(names.items()):
            if name in not_read:
                continue
            if name in listed:
                print(f"ok - {cmd} --help lists {name}")
            else:
                failed += 1
                print(f"not ok - {cmd} --help lists {name} (read in {where}); list it, or "
                      f"say in tests/docs/help_env.py why {cmd} does not read it")
        for name in sorted(listed - set(names)):
            failed += 1
            print(f"not ok - {cmd} --help names {name}, which no source reads")
        for name in sorted(set(not_read) - set(names)):
            failed += 1
            print(f"not ok - NOT_READ[{cmd}] names {name}, which no source reads any more")
        for name in sorted(set(not_read) & listed):
            failed += 1
            print(f"not ok - {cmd} --help lists {name}, which NOT_READ says it does not read")
    print(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
