#!/usr/bin/env python3
"""The layer test: core/ keeps to the layer order that core/README.md declares.

usage: layers.py [SRCDIR [BUILDDIR]]   (default: the current directory for both)

core/README.md holds the one source of truth, two kinds of lines:

    layers: base < manifest < ... < cli
    one module: manifest/manifest.c manifest/manifest_templates.c

Checks, each violation printed on a line of its own:
  (a) every `#include "x/y.h"` in core/ names a layer at or below the file's own:
        core/a/x.c -> core/b/y.h (#include)
  (b) from the built objects (nm), no file uses a function or variable defined in a
      higher layer:
        core/a/x.c -> core/b/y.c (symbol)
  (c) no call cycle between files, except between the files of one declared module;
      each cycle is printed as the list of its edges.
Every folder of core/ must be a layer.  Exit 0 when clean, 1 on violations, 99 when it
cannot check (no README line, no objects: build first).
"""
import os
import re
import subprocess
import sys

SYMBOL_DEFINED = set("TDBRGSVWC")


def fail_hard(msg):
    print("layers: " + msg, file=sys.stderr)
    sys.exit(99)


def read_readme(srcdir):
    path = os.path.join(srcdir, "core", "README.md")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        fail_hard("cannot read %s: %s" % (path, e))
    layers, modules = None, []
    for line in text.splitlines():
        m = re.match(r"^\s*layers:\s*(\S.*)$", line)
        if m:
            if layers is not None:
                fail_hard("core/README.md has two `layers:` lines")
            layers = [w.strip() for w in m.group(1).split("<")]
            if not all(re.match(r"^[a-z][a-z0-9_]*$", w) for w in layers):
                fail_hard("core/README.md: bad `layers:` line: " + line.strip())
        m = re.match(r"^\s*one module:\s*(\S.*)$", line)
        if m:
            modules.append(["core/" + f for f in m.group(1).split()])
    if layers is None:
        fail_hard("core/README.md has no `layers: a < b < ...` line")
    return layers, modules


def layer_of(path):
    """core/<layer>/... -> <layer>"""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "core" else None


def source_files(srcdir):
    out = []
    core = os.path.join(srcdir, "core")
    for d, _, files in os.walk(core):
        for f in files:
            if f.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(d, f), srcdir).replace(os.sep, "/"))
    return sorted(out)


def check_includes(srcdir, rank, files):
    bad = []
    for path in files:
        own = layer_of(path)
        if own not in rank:
            continue
        with open(os.path.join(srcdir, path), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = re.match(r'^\s*#\s*include\s*"([^"]+)"', line)
                if not m or "/" not in m.group(1):
                    continue
                target = m.group(1)
                tl = target.split("/")[0]
                if tl not in rank:
                    bad.append("%s -> core/%s (#include of an unknown layer)" % (path, target))
                elif rank[tl] > rank[own]:
                    bad.append("%s -> core/%s (#include)" % (path, target))
    return bad


def find_objects(srcdir, builddir):
    """{source path: newest object} for the objects under BUILDDIR/core whose source
    still exists (stale objects of moved or renamed files are ignored)."""
    best = {}
    core = os.path.join(builddir, "core")
    for d, _, files in os.walk(core):
        for f in files:
            if not f.endswith(".o"):
                continue
            obj = os.path.join(d, f)
            rel = os.path.relpath(d, builddir).replace(os.sep, "/")
            if rel.endswith("/.libs"):
                rel = rel[: -len("/.libs")]
            name = f[:-2]
            # automake's per-target prefix: libfrengine_la-host.o, fluxroute-main.o
            if "-" in name:
                name = name.split("-", 1)[1]
            src = rel + "/" + name + ".c"
            if not os.path.exists(os.path.join(srcdir, src)):
                continue
            mt = os.path.getmtime(obj)
            if src not in best or mt > best[src][0]:
                best[src] = (mt, obj)
    return {s: o for s, (_, o) in best.items()}


def nm(obj):
    try:
        out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        fail_hard("nm %s: %s" % (obj, e))
    defined, used = set(), set()
    for line in out.splitlines():
        w = line.split()
        if len(w) == 3 and w[1] in SYMBOL_DEFINED:
            defined.add(w[2])
        elif len(w) == 2 and w[0] == "U":
            used.add(w[1])
    return defined, used


def edges_from_objects(objects):
    defs, uses = {}, {}
    for src, obj in sorted(objects.items()):
        d, u = nm(obj)
        uses[src] = u
        for s in d:
            defs.setdefault(s, src)
    edges = {}  # (from, to) -> sorted symbols
    for src, u in uses.items():
        for s in u:
            to = defs.get(s)
            if to and to != src:
                edges.setdefault((src, to), []).append(s)
    return {k: sorted(v) for k, v in edges.items()}


def sccs(nodes, succ):
    """Tarjan's strongly connected components (iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(succ.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(succ.get(nxt, ())))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def main(argv):
    srcdir = argv[1] if len(argv) > 1 else "."
    builddir = argv[2] if len(argv) > 2 else srcdir
    layers, modules = read_readme(srcdir)
    rank = {name: i for i, name in enumerate(layers)}
    problems = 0

    folders = sorted(
        d for d in os.listdir(os.path.join(srcdir, "core"))
        if os.path.isdir(os.path.join(srcdir, "core", d)) and not d.startswith(".")
    )
    unknown = [d for d in folders if d not in rank]
    if unknown:
        print("== folders of core/ that are not layers (core/README.md `layers:` line)")
        for d in unknown:
            print("core/%s/" % d)
        problems += len(unknown)

    bad = check_includes(srcdir, rank, source_files(srcdir))
    if bad:
        print("== includes of a higher layer")
        print("\n".join(bad))
        problems += len(bad)

    objects = find_objects(srcdir, builddir)
    if not objects:
        fail_hard("no objects of core/ under %s/core: build first (make)" % builddir)
    edges = edges_from_objects(objects)

    up = []
    for (a, b), syms in sorted(edges.items()):
        la, lb = layer_of(a), layer_of(b)
        if la in rank and lb in rank and rank[lb] > rank[la]:
            up.extend("%s -> %s (%s)" % (a, b, s) for s in syms)
    if up:
        print("== calls into a higher layer")
        print("\n".join(up))
        problems += len(up)

    # Files of one declared module are one node of the graph.
    node = {f: f for f in objects}
    for mod in modules:
        for f in mod:
            node[f] = " + ".join(mod)
    succ = {}
    for (a, b) in edges:
        na, nb = node.get(a, a), node.get(b, b)
        if na != nb:
            succ.setdefault(na, set()).add(nb)
    cycles = [c for c in sccs(set(node.values()), succ) if len(c) > 1]
    if cycles:
        print("== call cycles between files (%d)" % len(cycles))
        for i, comp in enumerate(cycles, 1):
            members = set(comp)
            print("-- cycle %d: %s" % (i, " ".join(comp)))
            for (a, b), syms in sorted(edges.items()):
                if node.get(a, a) in members and node.get(b, b) in members and node.get(a, a) != node.get(b, b):
                    print("%s -> %s (%s)" % (a, b, ", ".join(syms)))
        problems += len(cycles)

    print("layers: %d files, %d file-to-file edges, order %s: %s"
          % (len(objects), len(edges), " < ".join(layers),
             "clean" if not problems else "%d problem(s)" % problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
