#!/usr/bin/env python3
"""Checks of the deploy/ assets against the fluxroute binary (tests/deploy/*.sh run it).

  deploy_check.py k8s FLUXROUTE RENDERED.yaml SERVICEMONITOR.yaml PROVIDERS.yaml DEPLOY.md
  deploy_check.py compose FLUXROUTE CONFIG.yaml PROVIDERS.yaml COLLECTOR.yaml
  deploy_check.py systemd FLUXROUTE PROVIDERS.yaml UNIT...  (EnvironmentFile=/etc/x/NAME
                   is checked as NAME.example beside the unit)
  deploy_check.py alerts ALERTS.yml ALERTS_TEST.yml
  deploy_check.py image FLUXROUTE DOCKERFILE CONFIGURE.ac ELF...  (what can be checked
                   without building: packages, ENV, the HEALTHCHECK's command line)
  deploy_check.py grafana DASHBOARD.json OUT_RULES.yml  (writes the queries as recording
                   rules for `promtool check rules`)

Every option and environment variable given to a FluxRoute process must be one that
`fluxroute serve|worker|controlplane --help` lists (or a provider credential that
providers.yaml names in api_key_env).  Prints one `ok`/`not ok` line per check; exit 1
when any failed.
"""
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

FAILED = []


def check(name, cond, detail=""):
    if cond:
        print("ok - " + name)
    else:
        FAILED.append(name)
        print("not ok - " + name + ("\n#   " + detail.replace("\n", "\n#   ") if detail else ""))


# ---- what the binary accepts ------------------------------------------------------------

COMMANDS = ("serve", "worker", "controlplane")
# Read by every command (core/cli/main.c, before the subcommand), documented in
# `fluxroute --help`'s environment section when deploy-bins' help lists it.
ENV_RE = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b")
FLAG_RE = re.compile(r"(--[a-z][a-z0-9-]*)(?:[ =]+(\S+))?")


def accepted(fluxroute, command):
    """(flags: {flag: takes_value}, env: set) from `fluxroute COMMAND --help`."""
    out = subprocess.run([fluxroute, command, "--help"], capture_output=True, text=True,
                         timeout=30)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "usage:" not in text:
        raise SystemExit("fluxroute %s --help failed (exit %d): %s"
                         % (command, out.returncode, text[:300]))
    flags = {}
    for m in FLAG_RE.finditer(text):
        flag, nxt = m.group(1), m.group(2) or ""
        # `--state URL`, `--addr HOST:PORT`, `[--plugin-dir DIR]...`: a placeholder in
        # capitals (or a bracketed address form) follows a flag that takes a value.
        takes = bool(re.match(r"^\[?[A-Z][A-Z0-9_:.|\[\]]*\]?", nxt)) and not nxt.startswith("--")
        flags[flag] = flags.get(flag, False) or takes
    flags.pop("--help", None)
    env = set(ENV_RE.findall(text))
    return flags, env


def credentials(providers_file):
    """The variables providers.yaml names in api_key_env: read by the provider plugins."""
    with open(providers_file) as f:
        doc = yaml.safe_load(f)
    names = set()
    for p in doc.get("providers", []):
        v = (p.get("config") or {}).get("api_key_env")
        if v:
            names.add(v)
    return names


class Binary:
    def __init__(self, fluxroute, providers_file):
        self.acc = {c: accepted(fluxroute, c) for c in COMMANDS}
        self.creds = credentials(providers_file)

    def check_args(self, where, args):
        """args = [command, --flag, value, ...]; returns {flag: value}."""
        if not args or args[0] not in COMMANDS:
            check("%s: runs serve, worker or controlplane" % where, False, "args %r" % args)
            return {}
        cmd = args[0]
        flags, _ = self.acc[cmd]
        given, bad, i = {}, [], 1
        while i < len(args):
            a = args[i]
            name, eq, val = a.partition("=")
            if not name.startswith("--") or name not in flags:
                bad.append(a)
                i += 1
                continue
            if flags[name] and not eq:
                if i + 1 >= len(args):
                    bad.append(a + " (no value)")
                    break
                val = args[i + 1]
                i += 1
            given[name] = val
            i += 1
        check("%s: every argument of `fluxroute %s` is in its --help" % (where, cmd), not bad,
              "not accepted: %s\naccepted: %s" % (" ".join(bad), " ".join(sorted(flags))))
        return given

    def check_env(self, where, cmd, names):
        _, env = self.acc[cmd]
        bad = sorted(n for n in names if n not in env and n not in self.creds)
        check("%s: every environment variable given to `fluxroute %s` is in its --help "
              "or a provider's api_key_env" % (where, cmd), not bad,
              "not accepted: %s\n--help lists: %s" % (" ".join(bad), " ".join(sorted(env))))


# ---- Kubernetes ---------------------------------------------------------------------------

def workloads(objs):
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def labels_match(selector, labels):
    """A label selector (matchLabels/matchExpressions, or a Service's plain map)."""
    structured = "matchLabels" in selector or "matchExpressions" in selector
    plain = (selector.get("matchLabels") or {}) if structured else selector
    if any(labels.get(k) != v for k, v in plain.items()):
        return False
    for e in selector.get("matchExpressions", []) if structured else []:
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] == "Exists" and e["key"] not in labels:
            return False
    return True


def addr_port(addr):
    return int(str(addr).rsplit(":", 1)[1])


def check_k8s(fluxroute, rendered, smon_file, providers_file, deploy_md):
    binary = Binary(fluxroute, providers_file)
    with open(rendered) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    by = {}
    for o in objs:
        by.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    check("k8s: the fluxroute Namespace", "fluxroute" in by.get("Namespace", {}))
    other = [o["kind"] + "/" + o["metadata"]["name"] for o in objs
             if o["kind"] != "Namespace" and o["metadata"].get("namespace") != "fluxroute"]
    check("k8s: every object is in namespace fluxroute", not other, " ".join(other))
    with open(deploy_md) as f:
        docs = f.read()

    pods = {}  # workload name -> (labels, pod spec)
    for w in workloads(objs):
        name = w["kind"] + "/" + w["metadata"]["name"]
        tmpl = w["spec"]["template"]
        spec = tmpl["spec"]
        pods[name] = (tmpl["metadata"].get("labels", {}), spec, w)
        check("%s: selector matches its pod labels" % name,
              labels_match(w["spec"]["selector"], tmpl["metadata"].get("labels", {})))
        psc = spec.get("securityContext", {})
        check("%s: pod runAsNonRoot with a non-zero runAsUser" % name,
              psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0)
        check("%s: no service account token mounted" % name,
              spec.get("automountServiceAccountToken") is False)
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for t in w["spec"].get("volumeClaimTemplates", []):
            vols[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "pvc": True}
        for c in spec["containers"]:
            cn = "%s container %s" % (name, c["name"])
            sc = c.get("securityContext", {})
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            check("%s: readOnlyRootFilesystem, no privilege escalation, drops ALL "
                  "capabilities, seccomp RuntimeDefault" % cn,
                  sc.get("readOnlyRootFilesystem") is True
                  and sc.get("allowPrivilegeEscalation") is False
                  and "ALL" in (sc.get("capabilities") or {}).get("drop", [])
                  and sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True
                  and seccomp == "RuntimeDefault", repr(sc))
            res = c.get("resources", {})
            check("%s: cpu and memory requests, a memory limit" % cn,
                  {"cpu", "memory"} <= set(res.get("requests", {}))
                  and "memory" in res.get("limits", {}), repr(res))
            check("%s: liveness and readiness probes" % cn,
                  "livenessProbe" in c and "readinessProbe" in c)
            mounts = c.get("volumeMounts", [])
            missing = [m["name"] for m in mounts if m["name"] not in vols]
            check("%s: every volumeMount has its volume" % cn, not missing, repr(missing))
            for m in mounts:
                v = vols.get(m["name"], {})
                for kind, key, objkind in (("configMap", "name", "ConfigMap"),
                                           ("secret", "secretName", "Secret")):
                    if kind in v and objkind == "ConfigMap":
                        check("%s: ConfigMap %s exists" % (cn, v[kind][key]),
                              v[kind][key] in by.get("ConfigMap", {}))
            if not c["image"].split("/")[-1].startswith("fluxroute"):
                continue
            # ---- a FluxRoute container ----
            args = list(c.get("command", [])[1:] if c.get("command") else []) + c.get("args", [])
            given = binary.check_args(cn, args)
            cmd = args[0] if args else "serve"
            env = {e["name"]: e for e in c.get("env", [])}
            binary.check_env(cn, cmd, env)
            for e in env.values():
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    check("%s: Secret %s is documented (kubectl create secret generic %s)"
                          % (cn, ref["name"], ref["name"]),
                          "create secret generic " + ref["name"] in docs)
            for m in mounts:
                v = vols.get(m["name"], {})
                if "secret" in v:
                    n = v["secret"]["secretName"]
                    check("%s: Secret %s is documented" % (cn, n),
                          "create secret generic " + n in docs)

            def mounted(path, writable=False):
                for m in mounts:
                    mp = m["mountPath"].rstrip("/") + "/"
                    if (path.rstrip("/") + "/").startswith(mp):
                        return not (writable and m.get("readOnly"))
                return False

            for flag in ("--manifest-dir", "--keys", "--providers"):
                if flag in given:
                    check("%s: %s %s is on a mounted volume" % (cn, flag, given[flag]),
                          mounted(given[flag]))
            if "--db" in given:
                check("%s: --db %s is on a writable persistent volume" % (cn, given["--db"]),
                      mounted(os.path.dirname(given["--db"]), True)
                      and any(vols.get(m["name"], {}).get("pvc") for m in mounts
                              if given["--db"].startswith(m["mountPath"])))
            spool = (env.get("CONTROLPLANE_SPOOL") or {}).get("value")
            if "--controlplane" in given:
                check("%s: CONTROLPLANE_SPOOL is on a writable volume" % cn,
                      spool is not None and mounted(os.path.dirname(spool), True), repr(spool))
            check("%s: /tmp is a writable volume (read-only root)" % cn, mounted("/tmp", True))
            maddr = given.get("--metrics-addr")
            check("%s: --metrics-addr given (Prometheus and the probes use it)" % cn,
                  maddr is not None)
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if maddr:
                mport = addr_port(maddr)
                check("%s: a port named metrics is --metrics-addr's %d" % (cn, mport),
                      ports.get("metrics") == mport, repr(ports))
                ann = w["spec"]["template"]["metadata"].get("annotations", {})
                check("%s: prometheus.io annotations name the metrics port" % cn,
                      ann.get("prometheus.io/scrape") == "true"
                      and ann.get("prometheus.io/port") == str(mport))
                want = {"serve": ("/healthz", "/readyz"), "controlplane": ("/healthz", "/readyz"),
                        "worker": ("/healthz", "/healthz")}[cmd]
                for probe, path in zip(("livenessProbe", "readinessProbe"), want):
                    hg = c.get(probe, {}).get("httpGet", {})
                    check("%s: %s GETs %s on the metrics listener" % (cn, probe, path),
                          hg.get("path") == path and hg.get("port") in ("metrics", mport),
                          repr(hg))
            if "--addr" in given:
                check("%s: a port named http is --addr's" % cn,
                      ports.get("http") == addr_port(given["--addr"]), repr(ports))
            # Services the URLs name exist with that port.
            for flag in ("--state", "--controlplane"):
                url = given.get(flag, "")
                m = re.match(r"^[a-z]+://(?:[^@/]*@)?([a-z0-9-]+):(\d+)", url)
                if m:
                    svc = by.get("Service", {}).get(m.group(1))
                    check("%s: %s names Service %s with port %s" % (cn, flag, m.group(1),
                                                                     m.group(2)),
                          svc is not None and any(p["port"] == int(m.group(2))
                                                  for p in svc["spec"]["ports"]))

    # ---- the shape the issue asks for ----
    router = by.get("Deployment", {}).get("fluxroute-router")
    check("k8s: router Deployment with 2 replicas", router and router["spec"]["replicas"] == 2)
    worker = by.get("Deployment", {}).get("fluxroute-worker")
    check("k8s: worker Deployment", worker is not None)
    cp = by.get("StatefulSet", {}).get("fluxroute-controlplane")
    check("k8s: control plane StatefulSet, 1 replica, with a PVC",
          cp and cp["spec"]["replicas"] == 1 and cp["spec"].get("volumeClaimTemplates"))
    check("k8s: Redis", "fluxroute-redis" in by.get("StatefulSet", {}))
    rl = router["spec"]["template"]["metadata"]["labels"] if router else {}
    pdbs = [p for p in by.get("PodDisruptionBudget", {}).values()
            if labels_match(p["spec"]["selector"], rl)]
    check("k8s: a PodDisruptionBudget keeps a router up",
          pdbs and pdbs[0]["spec"].get("minAvailable", 0) >= 1)
    hpas = [h for h in by.get("HorizontalPodAutoscaler", {}).values()
            if h["spec"]["scaleTargetRef"]["name"] == "fluxroute-router"]
    check("k8s: an HPA on CPU scales the routers from 2",
          hpas and hpas[0]["spec"]["minReplicas"] >= 2
          and any(m.get("resource", {}).get("name") == "cpu" for m in hpas[0]["spec"]["metrics"]))
    for s in by.get("Service", {}).values():
        sel = s["spec"].get("selector", {})
        targets = [(l, sp) for l, sp, _ in pods.values() if labels_match(sel, l)]
        check("k8s: Service %s selects pods" % s["metadata"]["name"], bool(targets))
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            found = any(cp_.get("name") == tp or cp_["containerPort"] == tp
                        for _, sp in targets for c in sp["containers"] for cp_ in c.get("ports", []))
            check("k8s: Service %s port %s reaches a container port" % (s["metadata"]["name"], tp),
                  found)
    # NetworkPolicies
    nps = by.get("NetworkPolicy", {})
    check("k8s: a default-deny NetworkPolicy (ingress and egress)",
          any(n["spec"]["podSelector"] == {} and set(n["spec"]["policyTypes"]) == {"Ingress", "Egress"}
              and not n["spec"].get("ingress") and not n["spec"].get("egress") for n in nps.values()))
    cpl = cp["spec"]["template"]["metadata"]["labels"] if cp else {}
    allowed_peers = []
    for n in nps.values():
        if "Ingress" not in n["spec"].get("policyTypes", []) or not labels_match(
                n["spec"]["podSelector"], cpl) or n["spec"]["podSelector"] == {}:
            continue
        for rule in n["spec"].get("ingress", []):
            ports = [p.get("port") for p in rule.get("ports", [])]
            if 8081 in ports or not ports:
                allowed_peers.append(rule.get("from"))
    comps = []
    ok_peers = bool(allowed_peers)
    for peers in allowed_peers:
        if not peers:
            ok_peers = False
            continue
        for p in peers:
            if set(p) != {"podSelector"}:
                ok_peers = False
            ml = p.get("podSelector", {}).get("matchLabels", {})
            comps.append(ml.get("app.kubernetes.io/component") or ",".join(sorted(ml)))
    check("k8s: only routers, workers and admins reach the control plane's API",
          ok_peers and set(comps) <= {"router", "worker", "fluxroute.io/controlplane-admin"}
          and "router" in comps, repr(allowed_peers))
    # The optional ServiceMonitor selects Services with a metrics port.
    with open(smon_file) as f:
        sm = yaml.safe_load(f)
    sel = sm["spec"]["selector"]
    svcs = [s for s in by.get("Service", {}).values()
            if labels_match(sel, s["metadata"].get("labels", {}))]
    comps = sorted(s["metadata"]["labels"].get("app.kubernetes.io/component") for s in svcs)
    check("k8s: the ServiceMonitor selects the router, worker and control plane Services",
          comps == ["controlplane", "router", "worker"], repr(comps))
    port = sm["spec"]["endpoints"][0]["port"]
    check("k8s: each selected Service has the ServiceMonitor's port %s" % port,
          all(any(p.get("name") == port for p in s["spec"]["ports"]) for s in svcs))


# ---- compose ------------------------------------------------------------------------------

# Exporters of the collector's core distribution (otel/opentelemetry-collector); `jaeger`
# was removed upstream (v0.85), which is how the original's compose broke.
CORE_EXPORTERS = {"otlp", "otlphttp", "debug", "nop", "file"}


def check_compose(fluxroute, config, providers_file, collector):
    binary = Binary(fluxroute, providers_file)
    with open(config) as f:
        doc = yaml.safe_load(f)
    services = doc["services"]
    fr = {n: s for n, s in services.items()
          if str(s.get("image", "")).split("/")[-1].startswith("fluxroute")}
    cmds = {}
    for n, s in sorted(fr.items()):
        args = s.get("command") or []
        if isinstance(args, str):
            args = shlex.split(args)
        given = binary.check_args("compose " + n, args)
        cmds[n] = (args[0] if args else "", given)
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        binary.check_env("compose " + n, args[0] if args else "serve", env)
        check("compose %s: read-only root, no capabilities, a tmpfs /tmp" % n,
              s.get("read_only") is True and "ALL" in s.get("cap_drop", [])
              and "/tmp" in (s.get("tmpfs") or []))
        maddr = given.get("--metrics-addr") or env.get("ROUTER_METRICS_ADDR") \
            or env.get("CONTROLPLANE_METRICS_ADDR")
        check("compose %s: a metrics listener (the image's HEALTHCHECK probes :9090)" % n,
              maddr is not None and addr_port(maddr) == 9090 if maddr else
              args[0] in ("serve", "worker"))  # the image's ENV sets ROUTER_METRICS_ADDR
    routers = sorted(n for n, (c, _) in cmds.items() if c == "serve")
    check("compose: 2 routers", len(routers) == 2, repr(routers))
    for n in routers:
        st = cmds[n][1].get("--state", "")
        check("compose %s: state in Redis" % n, st.startswith("redis://redis:"))
    check("compose: a worker", any(c == "worker" for c, _ in cmds.values()))
    cps = [n for n, (c, _) in cmds.items() if c == "controlplane"]
    check("compose: a control plane with its data in a named volume",
          len(cps) == 1 and any(str(v).split(":")[0] in (doc.get("volumes") or {})
                                for v in services[cps[0]].get("volumes", [])
                                if isinstance(v, str))
          or any(isinstance(v, dict) and v.get("type") == "volume"
                 for v in services[cps[0]].get("volumes", [])))
    rcmd = " ".join(map(str, services.get("redis", {}).get("command", [])))
    check("compose: Redis with appendonly yes and appendfsync always",
          "--appendonly yes" in rcmd and "--appendfsync always" in rcmd, rcmd)
    # Prometheus scrapes every FluxRoute process.
    prom = services.get("prometheus", {})
    pconf = None
    for v in prom.get("volumes", []):
        src = v["source"] if isinstance(v, dict) else v.split(":")[0]
        if src.endswith("prometheus.yml"):
            pconf = src
    check("compose: Prometheus mounts a prometheus.yml", pconf and os.path.exists(pconf))
    if pconf:
        with open(pconf) as f:
            pc = yaml.safe_load(f)
        targets = {t for j in pc["scrape_configs"] for sc in j.get("static_configs", [])
                   for t in sc["targets"]}
        for n, (c, given) in sorted(cmds.items()):
            hn = services[n].get("hostname", n)
            check("compose: Prometheus scrapes %s on :9090" % n,
                  "%s:9090" % hn in targets or "%s:9090" % n in targets, repr(sorted(targets)))
    # Bind mounts exist (gen-keys.sh has run).
    for n, s in sorted(services.items()):
        for v in s.get("volumes", []):
            src = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            if (isinstance(v, dict) and v.get("type") == "bind") or (src and src.startswith("/")):
                check("compose %s: bind source %s exists" % (n, src), os.path.exists(src))
    # The collector: OTLP/HTTP in, exporters of the core distribution, routers send to it.
    with open(collector) as f:
        col = yaml.safe_load(f)
    exps = [e.split("/")[0] for p in col["service"]["pipelines"].values() for e in p["exporters"]]
    check("compose: the collector's exporters exist in its core distribution",
          exps and set(exps) <= CORE_EXPORTERS, repr(exps))
    check("compose: the collector receives OTLP/HTTP on 4318",
          "4318" in str(col["receivers"]["otlp"]["protocols"].get("http")))
    for n in routers:
        env = services[n].get("environment") or {}
        ep = env.get("TRACE_ENDPOINT", "")
        m = re.match(r"^http://([a-z0-9-]+):4318/", ep)
        check("compose %s: TRACE_ENDPOINT names the collector service" % n,
              m is not None and m.group(1) in services, ep)


# ---- systemd ------------------------------------------------------------------------------

def env_file_names(path):
    """Variables an environment file sets, commented-out examples included."""
    names = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^#?([A-Z][A-Z0-9_]*)=", line.strip())
            if m:
                names.add(m.group(1))
    return names


def check_systemd(fluxroute, providers_file, units):
    binary = Binary(fluxroute, providers_file)
    for u in units:
        name = os.path.basename(u)
        text = open(u).read()
        kv = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                kv.setdefault(k.strip(), []).append(v.strip())
        env_names, envfile = set(), "no EnvironmentFile"
        for ef in kv.get("EnvironmentFile", []):
            envfile = os.path.join(os.path.dirname(u), os.path.basename(ef.lstrip("-")) + ".example")
            check("systemd %s: %s exists" % (name, os.path.basename(envfile)),
                  os.path.exists(envfile))
            if os.path.exists(envfile):
                env_names |= env_file_names(envfile)
        exe = shlex.split(kv["ExecStart"][0])
        args = exe[1:]
        binary.check_args("systemd " + name, args)
        cmd = args[0]
        names = set(env_names)
        for e in kv.get("Environment", []):
            for item in shlex.split(e):
                names.add(item.split("=", 1)[0])
        binary.check_env("systemd %s (with %s)" % (name, os.path.basename(envfile)), cmd, names)
        for key, want in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                          ("PrivateTmp", "yes")):
            check("systemd %s: %s=%s" % (name, key, want), kv.get(key) == [want])
        check("systemd %s: a dedicated user or DynamicUser" % name,
              kv.get("User") not in (None, ["root"]) or kv.get("DynamicUser") == ["yes"])
        check("systemd %s: StateDirectory" % name, "StateDirectory" in kv)
        fams = " ".join(kv.get("RestrictAddressFamilies", []))
        check("systemd %s: RestrictAddressFamilies allows AF_UNIX (helpers' socketpairs), "
              "AF_INET, AF_INET6" % name,
              all(f in fams.split() for f in ("AF_UNIX", "AF_INET", "AF_INET6")), fams)
        envs = " ".join(kv.get("Environment", []))
        if cmd in ("serve", "worker"):
            m = re.search(r"CONTROLPLANE_SPOOL=(\S+)", envs)
            state = ["/var/lib/" + d for d in " ".join(kv.get("StateDirectory", [])).split()]
            check("systemd %s: CONTROLPLANE_SPOOL is under its StateDirectory" % name,
                  m is not None and any(m.group(1).startswith(s + "/") for s in state),
                  envs)
            m = re.search(r"COORDINATION_DIR=(\S+)", envs)
            check("systemd %s: COORDINATION_DIR outside the private /tmp, writable" % name,
                  m is not None and not m.group(1).startswith("/tmp")
                  and not m.group(1).startswith("/var/tmp")
                  and any(m.group(1).startswith(p.lstrip("-")) for p in
                          " ".join(kv.get("ReadWritePaths", []) + [
                              "/run/" + d for d in " ".join(
                                  kv.get("RuntimeDirectory", [])).split()]).split()),
                  envs)


# ---- alerts coverage --------------------------------------------------------------------------

def check_alerts(alerts, tests):
    with open(alerts) as f:
        names = [r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
    with open(tests) as f:
        cases = [c for t in yaml.safe_load(f)["tests"] for c in t.get("alert_rule_test", [])]
    for n in names:
        fires = [c for c in cases if c["alertname"] == n and c.get("exp_alerts")]
        quiet = [c for c in cases if c["alertname"] == n and not c.get("exp_alerts")]
        check("alerts: %s has a firing case and a quiet case in %s" % (n, os.path.basename(tests)),
              fires and quiet)


# ---- the Dockerfile, without building it ----------------------------------------------------

def dockerfile_stages(path):
    """[(FROM line, [instructions joined over continuations])]."""
    stages, cur = [], None
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            cur = (line, [])
            stages.append(cur)
        elif cur:
            cur[1].append(line)
    return stages


def apt_packages(instructions):
    pk = set()
    for i in instructions:
        for m in re.finditer(r"apt-get install ([^&;]*)", i):
            pk |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pk


def check_image(fluxroute, dockerfile, configure_ac, elves):
    stages = dockerfile_stages(dockerfile)
    check("image: two stages, the runtime on debian:12-slim",
          len(stages) == 2 and stages[-1][0].split()[1] == "debian:12-slim", repr([s[0] for s in stages]))
    build_pk, run_pk = apt_packages(stages[0][1]), apt_packages(stages[-1][1])
    with open(configure_ac) as f:
        need = set(re.findall(r"FR_NEED\(\[\w+\], \[[^]]+\], \[([^]]+)\]\)", f.read()))
    check("image: the build stage installs every package configure needs",
          need and need <= build_pk, "missing: %s" % " ".join(sorted(need - build_pk)))
    # The runtime stage installs the package of every library the binary and the plugins
    # need directly (found with dpkg -S on this Debian 12 machine).
    missing = set()
    for elf in elves:
        out = subprocess.run(["readelf", "-d", elf], capture_output=True, text=True).stdout
        for so in re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out):
            if so.startswith(("libc.so", "ld-linux", "libm.so", "libpthread", "libdl")):
                continue  # libc6, in every image
            if so.startswith(("libfluxroute", "libfr")):
                continue
            if so.startswith(("libasan", "libubsan", "liblsan", "libtsan")):
                continue  # a sanitizer build's (CI's second suite); the image builds none
            r = subprocess.run(["dpkg", "-S", "*/" + so], capture_output=True, text=True)
            pkgs = {l.split(":")[0] for l in r.stdout.splitlines() if ":" in l}
            if not pkgs & run_pk:
                missing.add("%s (%s)" % (so, ",".join(sorted(pkgs)) or "no package"))
    check("image: the runtime stage installs the package of every library the binary and "
          "plugins link", not missing, "missing: %s" % " ".join(sorted(missing)))
    run = stages[-1][1]
    user = [i.split()[1] for i in run if i.upper().startswith("USER ")]
    check("image: USER is a non-root uid", user and user[-1].split(":")[0] not in ("0", "root"),
          repr(user))
    vols = " ".join(i for i in run if i.upper().startswith("VOLUME "))
    check("image: /plugins and /var/lib/fluxroute are volumes",
          "/plugins" in vols and "/var/lib/fluxroute" in vols, vols)
    env = {}
    for i in run:
        if i.upper().startswith("ENV "):
            for k, v in re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", i):
                env[k] = v
    acc = {c: accepted(fluxroute, c)[1] for c in COMMANDS}
    bad = sorted(k for k in env if not any(k in a for a in acc.values()))
    check("image: every ENV is read by serve, worker or controlplane", not bad, " ".join(bad))
    hc = [i for i in run if i.upper().startswith("HEALTHCHECK ")]
    cmd = None
    if hc:
        m = re.search(r"CMD (\[.*\])", hc[0])
        cmd = json.loads(m.group(1)) if m else None
    check("image: HEALTHCHECK runs fluxroute probe on the :9090 metrics listener",
          cmd and cmd[:2] == ["fluxroute", "probe"] and any(":9090/" in a for a in cmd), repr(cmd))
    for k in ("ROUTER_METRICS_ADDR", "CONTROLPLANE_METRICS_ADDR"):
        check("image: %s=:9090 (what the HEALTHCHECK probes)" % k, env.get(k) == ":9090")
    ep = [i for i in run if i.upper().startswith("ENTRYPOINT ")]
    check("image: ENTRYPOINT is fluxroute (the command picks the process)",
          ep and json.loads(ep[-1].split(None, 1)[1]) == ["fluxroute"])
    if cmd:
        print("HEALTHCHECK_CMD=" + shlex.join(cmd[1:]))


# ---- the dashboard -------------------------------------------------------------------------

# Issue 29's panels: a title word for each, and a metric its queries must use.
PANELS = [("runs/s by status", "fluxroute_runs_total"),
          ("step latency p50 and p99", "fluxroute_step_duration_seconds_bucket"),
          ("retries", "fluxroute_retries_total"),
          ("breaker states", "fluxroute_circuit_state"),
          ("provider requests", "fluxroute_provider_requests_total"),
          ("tokens", "fluxroute_provider_tokens_total"),
          ("provider latency", "fluxroute_provider_latency_seconds_bucket"),
          ("spend", "fluxroute_budget_used_micros"),
          ("queue depth", "fluxroute_queue_depth"),
          ("http requests/s by code", "fluxroute_http_requests_total"),
          ("control plane ingestion", "fluxroute_cp_usage_events_total")]


def check_grafana(dashboard, out_rules):
    with open(dashboard) as f:
        dash = json.load(f)
    panels = [p for p in dash["panels"] if p.get("type") != "row"]
    ids = [p["id"] for p in dash["panels"]]
    check("grafana: panel ids are unique", len(ids) == len(set(ids)))
    for title, metric in PANELS:
        hits = [p for p in panels if title in p["title"].lower()
                and any(metric in t["expr"] for t in p.get("targets", []))]
        check("grafana: a panel '%s' on %s" % (title, metric), bool(hits))
    dsvars = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    rules = []
    for p in panels:
        check("grafana: panel '%s' uses the datasource variable" % p["title"],
              p.get("datasource", {}).get("uid", "").strip("${}") in dsvars)
        for t in p.get("targets", []):
            e = t["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
            e = re.sub(r"\$\{?(\w+)\}?", ".*", e)
            rules.append({"record": "dashboard:panel%d:%s" % (p["id"], t["refId"]), "expr": e})
    with open(out_rules, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    check("grafana: %d queries written for promtool" % len(rules), len(rules) >= len(PANELS))


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "k8s" and len(argv) == 7:
        check_k8s(*argv[2:])
    elif what == "compose" and len(argv) == 6:
        check_compose(*argv[2:])
    elif what == "systemd" and len(argv) >= 5:
        check_systemd(argv[2], argv[3], argv[4:])
    elif what == "image" and len(argv) >= 5:
        check_image(argv[2], argv[3], argv[4], argv[5:])
    elif what == "grafana" and len(argv) == 4:
        check_grafana(*argv[2:])
    elif what == "alerts" and len(argv) == 4:
        check_alerts(*argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
