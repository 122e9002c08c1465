#!/usr/bin/env python3
"""The compose topology without containers (issue 29), run by tests/e2e/e2e_deploy_topology.sh.

Reads deploy/compose/compose.yaml and starts what it describes as processes on loopback
ports: redis-server with the compose's arguments, then every FluxRoute service (the
control plane, the routers, the worker) with the command and environment compose gives
it, and Prometheus with deploy/prometheus/prometheus.yml and alerts.yml.  What a
container has is mapped onto this machine, and only that:
  - bind mounts (HOST:CONTAINER) become their host paths, named volumes folders in TMP,
    env_file entries the files deploy/compose/gen-keys.sh writes (run here into TMP);
  - listen addresses (":8080") become 127.0.0.1:0 (the kernel picks the port, the process
    prints it), service URLs (redis://redis:6379, http://controlplane:8081) the addresses
    the processes printed, Prometheus's targets the --metrics-addr listeners they printed;
  - the OpenTelemetry variables are dropped (no collector here), and Prometheus scrapes
    every second instead of every 15 s (a test cannot wait minutes).
Then: every metric name deploy/grafana/*.json and alerts.yml use is exposed by the running
serve, worker and control plane (deploy_metric_names.py); the admin creates tenant demo
(docs/deploy.md); the key gen-keys.sh made runs hello.yaml through a router; Prometheus
sees every target up and its rules loaded; the run shows in what Prometheus scraped
(runs, provider calls, the control plane's accepted usage).

usage: deploy_topology.py SRCDIR FLUXROUTE TMPDIR
Prints ok / not ok lines; exit 1 when one failed.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

SRC, FLUXROUTE, TMP = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3])
COMPOSE_DIR = SRC / "deploy" / "compose"
PROCS = []  # (name, Popen)
failed = 0


def ok(msg, *_detail):
    print(f"ok - {msg}", flush=True)


def not_ok(msg, *detail):
    global failed
    failed += 1
    print(f"not ok - {msg}", flush=True)
    for d in detail:
        for line in str(d).splitlines()[:40]:
            print(f"#   {line}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, data=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def wait_for(what, cond, seconds):
    """Polls cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def start(name, argv, env, out, wait_lines):
    """Starts a process with stdout to `out`; waits until it printed `wait_lines` lines."""
    log = open(out, "w")
    err = open(str(out) + ".err", "w")
    p = subprocess.Popen(argv, env=env, stdout=log, stderr=err, stdin=subprocess.DEVNULL)
    PROCS.append((name, p))

    def lines():
        if p.poll() is not None:
            return "exited"
        text = Path(out).read_text().splitlines()
        return (text or [""]) if len(text) >= wait_lines else None

    got = wait_for(name, lines, 30)
    if got is None or got == "exited":
        not_ok(f"{name} started", f"argv: {argv}", Path(str(out) + ".err").read_text())
        raise SystemExit(finish())
    return got


def finish():
    for name, p in reversed(PROCS):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p in reversed(PROCS):
        try:
            p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            p.kill()
            not_ok(f"{name} stopped on SIGTERM within 40 s")
    print(f"{failed} failed", flush=True)
    return 1 if failed else 0


def env_file(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def main():
    compose = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
    services = compose["services"]
    secrets = TMP / "secrets"
    r = subprocess.run(["sh", str(COMPOSE_DIR / "gen-keys.sh"), str(secrets)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        not_ok("deploy/compose/gen-keys.sh made the secrets", r.stdout, r.stderr)
        return finish()
    ok("deploy/compose/gen-keys.sh made the secrets")

    # ---- redis-server with the compose's arguments --------------------------------------
    rport = free_port()
    rcmd = list(services["redis"]["command"])
    (TMP / "redis").mkdir()
    start("redis", rcmd + ["--port", str(rport), "--bind", "127.0.0.1", "--dir",
                           str(TMP / "redis")], os.environ.copy(), TMP / "redis.out", 0)
    if not wait_for("redis", lambda: subprocess.run(
            ["redis-cli", "-p", str(rport), "ping"], capture_output=True,
            text=True).stdout.strip() == "PONG", 10):
        not_ok("redis-server answers PING")
        return finish()
    urls = {"redis": f"redis://127.0.0.1:{rport}"}  # compose host -> what serves it here
    metrics = {}  # compose hostname -> host:port of its --metrics-addr listener

    def service_plan(name):
        svc = services[name]
        mounts = []
        for v in svc.get("volumes", []):
            host, container = v.split(":")[:2]
            if host.startswith(".") or host.startswith("/"):
                host = str((COMPOSE_DIR / host).resolve())
                if host.startswith(str(COMPOSE_DIR / "secrets")):
                    host = str(secrets) + host[len(str(COMPOSE_DIR / "secrets")):]
            else:
                host = str(TMP / "volumes" / host)
                Path(host).mkdir(parents=True, exist_ok=True)
            mounts.append((container, host))
        mounts.sort(key=lambda m: -len(m[0]))

        def local(value):
            value = str(value)
            if re.fullmatch(r"(0\.0\.0\.0)?:\d+", value):
                return "127.0.0.1:0"
            m = re.match(r"(redis|https?)://([a-z0-9-]+):(\d+)(.*)", value)
            if m and m.group(2) in urls:
                return urls[m.group(2)] + m.group(4)
            for container, host in mounts:
                if value == container or value.startswith(container + "/"):
                    return host + value[len(container):]
            return value

        argv = [FLUXROUTE] + [local(a) for a in svc["command"]]
        env = {k: v for k, v in os.environ.items()
               if not re.match(r"(ROUTER|CONTROLPLANE|TRACE|LOG|AUDIT|COORDINATION)_", k)}
        for f in svc.get("env_file", []):
            env.update(env_file(secrets / Path(f).name))
        for k, v in (svc.get("environment") or {}).items():
            env[k] = local(v)
        for k in ("TRACE_ENABLED", "TRACE_ENDPOINT"):
            env.pop(k, None)
        return argv, env

    def metrics_line(lines):
        for line in lines:
            m = re.match(r"metrics listening on http://(\S+)$", line)
            if m:
                return m.group(1)
        return None

    # ---- the control plane, then the routers and the worker -------------------------------
    fr_services = [n for n, s in services.items()
                   if s.get("command") and s["command"][0] in ("serve", "worker", "controlplane")]
    order = sorted(fr_services, key=lambda n: {"controlplane": 0, "serve": 1, "worker": 2}
                   [services[n]["command"][0]])
    if [services[n]["command"][0] for n in order].count("controlplane") != 1:
        not_ok("compose.yaml has one control plane", order)
        return finish()
    lines_of = {}
    for name in order:
        argv, env = service_plan(name)
        lines = start(name, argv, env, TMP / f"{name}.out", 2)
        lines_of[name] = lines
        host = services[name].get("hostname", name)
        maddr = metrics_line(lines)
        if not maddr:
            not_ok(f"{name} has a --metrics-addr listener", lines)
            continue
        metrics[host] = maddr
        if services[name]["command"][0] == "controlplane":
            urls[host] = re.match(r"listening on (\S+)$", lines[0]).group(1)
    ok(f"started {', '.join(order)} from compose.yaml")

    # ---- every metric name the dashboard and alerts use is exposed ----------------------
    scrapes = []
    for host, addr in sorted(metrics.items()):
        code, text = http(f"http://{addr}/metrics")
        if code != 200:
            not_ok(f"{host}'s metrics listener answers /metrics", code, text)
            continue
        p = TMP / f"{host}.metrics"
        p.write_text(text)
        scrapes.append(str(p))
        code, _ = http(f"http://{addr}/healthz")
        (ok if code == 200 else not_ok)(f"{host}'s metrics listener answers /healthz ({code})")
    r = subprocess.run([sys.executable, str(SRC / "tests/e2e/deploy_metric_names.py"), str(SRC)]
                       + scrapes, capture_output=True, text=True)
    print(r.stdout, end="")
    if r.returncode == 0:
        ok("every metric name of deploy/grafana and alerts.yml is exposed")
    else:
        not_ok("every metric name of deploy/grafana and alerts.yml is exposed", r.stderr)

    # ---- Prometheus with deploy/prometheus -------------------------------------------------
    pport = free_port()
    prom_dir = TMP / "prometheus"
    prom_dir.mkdir()
    cfg = yaml.safe_load((SRC / "deploy/prometheus/prometheus.yml").read_text())
    cfg.setdefault("global", {})["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    expected = 0
    for job in cfg.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            targets = []
            for t in sc.get("targets", []):
                host = t.rsplit(":", 1)[0]
                if host in ("localhost", "127.0.0.1", "prometheus"):
                    targets.append(f"127.0.0.1:{pport}")
                elif host in metrics:
                    targets.append(metrics[host])
                else:
                    not_ok(f"prometheus.yml target {t} (job {job.get('job_name')}) is a "
                           "compose service with a --metrics-addr listener", sorted(metrics))
            sc["targets"] = targets
            expected += len(targets)
    (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    for f in cfg.get("rule_files", []):
        (prom_dir / f).write_text((SRC / "deploy/prometheus" / f).read_text())
    start("prometheus", ["prometheus", f"--config.file={prom_dir / 'prometheus.yml'}",
                         f"--storage.tsdb.path={prom_dir / 'data'}",
                         f"--web.listen-address=127.0.0.1:{pport}"],
          os.environ.copy(), TMP / "prometheus.out", 0)
    prom = f"http://127.0.0.1:{pport}"
    if not wait_for("prometheus", lambda: http(f"{prom}/-/ready")[0] == 200, 60):
        not_ok("prometheus is ready", Path(str(TMP / "prometheus.out") + ".err").read_text()[-3000:])
        return finish()
    ok("prometheus started with deploy/prometheus/prometheus.yml and its rule files")

    # ---- a run through a router ------------------------------------------------------------
    admin = env_file(secrets / "controlplane.env")["CONTROLPLANE_API_KEY"]
    cp = urls["controlplane"]
    code, body = http(f"{cp}/v1/tenants", json.dumps({"id": "demo", "namespace": "hello"}).encode(),
                      {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
    (ok if code == 201 else not_ok)(f"the admin creates tenant demo ({code})", body)
    key = (secrets / "api-key").read_text().strip()
    router = next(n for n in order if services[n]["command"][0] == "serve")
    rurl = re.match(r"listening on (\S+)$", lines_of[router][0]).group(1)
    code, body = http(f"{rurl}/v1/run", json.dumps({"manifest": "hello.yaml"}).encode(),
                      {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                      timeout=60)
    status = json.loads(body).get("status") if code == 200 else None
    if code == 200 and status == "succeeded":
        ok(f"hello.yaml ran through {router}: succeeded")
    else:
        not_ok(f"hello.yaml ran through {router}", code, body)

    # ---- what Prometheus sees --------------------------------------------------------------
    def targets_up():
        code, body = http(f"{prom}/api/v1/targets")
        if code != 200:
            return None
        active = json.loads(body)["data"]["activeTargets"]
        return active if len(active) == expected and all(
            t["health"] == "up" for t in active) else None

    up = wait_for("targets", targets_up, 60)
    if up:
        ok(f"prometheus sees every target up ({', '.join(sorted(t['labels']['job'] for t in up))})")
    else:
        not_ok("prometheus sees every target up", http(f"{prom}/api/v1/targets")[1][:3000])
    code, body = http(f"{prom}/api/v1/rules")
    groups = json.loads(body)["data"]["groups"] if code == 200 else []
    n_rules = sum(len(g["rules"]) for g in groups)
    (ok if n_rules else not_ok)(f"prometheus loaded alerts.yml ({n_rules} rules)", body[:2000])

    def query_at_least(expr, want):
        def q():
            code, body = http(f"{prom}/api/v1/query?" +
                              urllib.parse.urlencode({"query": expr}))
            if code != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res if res and float(res[0]["value"][1]) >= want else None
        res = wait_for(expr, q, 30)
        if res:
            ok(f"prometheus: {expr} = {res[0]['value'][1]}")
        else:
            not_ok(f"prometheus: {expr} >= {want}", http(f"{prom}/api/v1/query?" +
                                                       urllib.parse.urlencode({"query": expr}))[1])

    query_at_least('sum(fluxroute_runs_total{namespace="hello",status="succeeded"})', 1)
    query_at_least('sum(fluxroute_provider_requests_total{provider="local"})', 2)
    query_at_least('sum(fluxroute_cp_usage_events_total{result="accepted"})', 3)
    query_at_least('sum(fluxroute_usage_spool_events_total{state="sent"})', 3)
    return finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception as e:  # a bug here must not leave processes behind
        not_ok("the topology test ran to its end", repr(e))
        sys.exit(finish())
