#!/usr/bin/env python3
"""Finds import cycles between the modules of `src/` (issue 12: "no import cycles").

Rule checked: among the children of any one module (the crate root's top-level modules, the
files of `localnet/rpc/`, ...), the "uses" graph is acyclic. A child stands for its whole
subtree, so `config::providers -> paygate::offer` is an edge `config -> paygate` at the top
level. Edges come from `use crate::...`/`use super::...` lines (brace groups expanded) and
from `crate::a::b` paths written inline. A reference to a parent module's own items (its
re-exports included, resolved one level) counts as an edge to the child defining them.
Test-only code (`tests.rs` files, trailing `#[cfg(test)] mod tests { ... }`) is left out:
tests may look anywhere.

Usage: python3 scripts/module-cycles.py [src-dir]   (exit 1 when a cycle is found)
"""

import os
import re
import sys
from collections import defaultdict

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")


def module_of(rel):
    """`localnet/rpc/tx.rs` -> ('localnet', 'rpc', 'tx'); `config/mod.rs` -> ('config',)."""
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


def strip_tests(text):
    # A trailing inline test module: everything from `#[cfg(test)]` + `mod tests {` on.
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)
    if m:
        text = text[: m.start()]
    # Comments (doc links mention paths that are not imports).
    text = re.sub(r"//[^\n]*", "", text)
    return text


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, body = tree[:i], tree[i + 1 : tree.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        if item.strip():
            out += [prefix + p if p != "self" else prefix.rstrip(":") for p in expand(item)]
    return out


modules = {}
for root, _, files in os.walk(SRC):
    for f in files:
        if f.endswith(".rs"):
            rel = os.path.relpath(os.path.join(root, f), SRC).replace(os.sep, "/")
            if f == "tests.rs" or rel == "main.rs":
                continue
            with open(os.path.join(root, f)) as fh:
                modules[module_of(rel)] = strip_tests(fh.read())

# Re-exports: `pub use child::{A, B}` in a module maps A and B to that child.
reexports = defaultdict(dict)
for mod, text in modules.items():
    for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
        for path in expand(m.group(1)):
            segs = [s for s in path.split("::") if s]
            if segs and segs[0] == "self":
                segs = segs[1:]
            if len(segs) >= 2 and mod + (segs[0],) in modules:
                reexports[mod][segs[-1]] = mod + tuple(segs[:-1])


def resolve(mod, path):
    segs = [s.strip() for s in path.split("::") if s.strip()]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] == "super":
        base = mod
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    elif segs[0] == "self":
        base, segs = mod, segs[1:]
    else:
        return None
    target = base
    for s in segs:
        if target + (s,) in modules:
            target = target + (s,)
        else:
            target = reexports[target].get(s, target)
            break
    return target


edges = set()
for mod, text in modules.items():
    paths = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", text):
        paths += expand(m.group(1))
    body = re.sub(r"\buse\s+[^;]*;", "", text)
    paths += re.findall(r"\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", body)
    for p in paths:
        target = resolve(mod, p)
        if target is not None and target != mod:
            edges.add((mod, target))


def sccs(nodes, adj):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


# One sibling graph per parent module.
found = 0
parents = {m[:-1] for m in modules if m}
for parent in sorted(parents):
    depth = len(parent)
    adj = defaultdict(set)
    nodes = set()
    witness = defaultdict(list)
    for a, b in edges:
        if a[:depth] == parent and b[:depth] == parent and len(a) > depth and len(b) > depth:
            ca, cb = a[: depth + 1], b[: depth + 1]
            if ca != cb:
                adj[ca].add(cb)
                nodes |= {ca, cb}
                witness[(ca, cb)].append(f"{'::'.join(a)} -> {'::'.join(b)}")
    for comp in sccs(sorted(nodes), adj):
        found += 1
        names = [c[-1] for c in comp]
        where = "::".join(parent) or "crate"
        print(f"cycle in {where}: {' <-> '.join(names)}")
        members = set(comp)
        for (ca, cb), ws in sorted(witness.items()):
            if ca in members and cb in members:
                print(f"    {ca[-1]} -> {cb[-1]}: {', '.join(sorted(ws)[:4])}")

print(f"{found} cycle(s) among sibling modules ({len(modules)} modules, {len(edges)} edges)")
sys.exit(1 if found else 0)
