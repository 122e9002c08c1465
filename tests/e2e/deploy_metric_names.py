#!/usr/bin/env python3
"""Every metric name deploy/grafana/*.json and deploy/prometheus/alerts.yml use exists in
what the binaries expose.

usage: deploy_metric_names.py SRCDIR EXPOSITION_FILE...

The names are taken from the PromQL of the dashboards (every "expr" and every templating
"query" or "definition") and of the alert and recording rules ("expr"), string literals
removed; a name counts when it starts with fluxroute_ and is not one a recording rule of
alerts.yml defines.  A name exists when one of the expositions (scrapes of a running
serve, worker and control plane) has a `# TYPE` line for it, or for the histogram it is
the _bucket, _sum or _count series of.  Prints one ok/not ok line per name; exit 1 when a
name is missing or when no name was found at all (the files moved or the patterns no
longer match).
"""
import json
import re
import sys
from pathlib import Path

import yaml

NAME = re.compile(r"(?<![A-Za-z0-9_:])fluxroute_[A-Za-z0-9_:]*")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def names_in(promql):
    return set(NAME.findall(STRING.sub('""', promql)))


def walk_json(node, out, where):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                for n in names_in(v):
                    out.setdefault(n, where)
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                for n in names_in(v["query"]):
                    out.setdefault(n, where)
            else:
                walk_json(v, out, where)
    elif isinstance(node, list):
        for v in node:
            walk_json(v, out, where)


def main():
    src = Path(sys.argv[1])
    used, recorded = {}, set()
    for dash in sorted((src / "deploy" / "grafana").glob("*.json")):
        walk_json(json.loads(dash.read_text()), used, f"deploy/grafana/{dash.name}")
    alerts = src / "deploy" / "prometheus" / "alerts.yml"
    doc = yaml.safe_load(alerts.read_text()) or {}
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "record" in rule:
                recorded.add(rule["record"])
            for n in names_in(str(rule.get("expr", ""))):
                used.setdefault(n, "deploy/prometheus/alerts.yml")
    exposed = {}
    for path in sys.argv[2:]:
        for line in Path(path).read_text().splitlines():
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                exposed[m.group(1)] = m.group(2)
    failed = 0
    if not used:
        print("not ok - no fluxroute_ metric found in deploy/grafana/*.json and "
              "deploy/prometheus/alerts.yml")
        return 1
    for name, where in sorted(used.items()):
        if name in recorded:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in exposed or (base != name and exposed.get(base) == "histogram"):
            print(f"ok - {name} ({where}) is exposed")
        else:
            failed += 1
            print(f"not ok - {name} ({where}) is exposed by none of serve, worker, controlplane")
    print(f"{len(used)} names, {failed} missing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
