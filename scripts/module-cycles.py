#!/usr/bin/env python3
"""Fails if a crate's modules form a cycle.

Every `.rs` file under a crate's `src/` is a module (`a/mod.rs` is `a`, `lib.rs` the root).
A module depends on another when its non-test code names it (`crate::a::b`, or `super::x`
for a sibling). Cycles are the strongly connected components of that graph with more than
one module; each is printed. Usage: scripts/module-cycles.py crates/*/src
"""
import os
import re
import sys


def modules(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            text = open(path, encoding="utf-8").read()
            # Unit tests may use anything; only the module's own code counts.
            cut = text.find("#[cfg(test)]")
            found["::".join(parts)] = text if cut < 0 else text[:cut]
    return found


def graph(mods):
    edges = {m: set() for m in mods}
    for m, text in mods.items():
        for ref in re.findall(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
            parts = ref.split("::")
            for k in range(len(parts), 0, -1):
                target = "::".join(parts[:k])
                if target in mods:
                    related = m.startswith(target + "::") or target.startswith(m + "::")
                    if target != m and not related:
                        edges[m].add(target)
                    break
        parent = "::".join(m.split("::")[:-1])
        for ref in re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text):
            target = f"{parent}::{ref}" if parent else ref
            if target in mods and target != m:
                edges[m].add(target)
    return edges


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(roots):
    failed = False
    for root in roots:
        mods = modules(root)
        found = cycles(graph(mods))
        for comp in found:
            print(f"{root}: module cycle: {' <-> '.join(comp)}")
        failed |= bool(found)
        print(f"{root}: {len(mods)} modules, {len(found)} cycles")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
