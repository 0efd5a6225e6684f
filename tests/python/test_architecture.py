"""The layout rules of docs/architecture.md, checked on the source: no file of `src/` imports
another file that imports it back, directly or through others, and no file is over 700
lines."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)


def modules() -> dict[tuple[str, ...], Path]:
    """Every file of `src/` by its module path (`mod.rs` and `lib.rs` are their directory's)."""
    found = {}
    for p in SRC.rglob("*.rs"):
        parts = p.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "mod" or parts == ("lib",):
            parts = parts[:-1]
        found[tuple(parts)] = p
    return found


def paths(prefix: list[str], tree: str) -> list[list[str]]:
    """The paths a `use` tree names (`a::{b, c::{d}}` gives `a::b` and `a::c::d`)."""
    tree = tree.strip()
    if tree.startswith("{"):
        items, depth, cur = [], 0, ""
        for ch in tree[1:-1]:
            depth += (ch == "{") - (ch == "}")
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        return [p for item in items if item.strip() for p in paths(prefix, item)]
    if "::" in tree:
        head, rest = tree.split("::", 1)
        return paths(prefix + [head.strip()], rest)
    return [prefix + [tree.split(" as ")[0].strip()]]


def imports(mods: dict[tuple[str, ...], Path]) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    """Per file, the files its `use crate::…`, `use super::…` and `use self::…` name (the
    longest module prefix of each path that is a file)."""
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for mod, path in mods.items():
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", path.read_text(), flags=re.S)
        for m in USE.finditer(text):
            tree = " ".join(m.group(1).split())
            if tree.startswith("crate::"):
                base, tree = [], tree[len("crate::"):]
            elif tree.startswith("self::"):
                base, tree = list(mod), tree[len("self::"):]
            elif tree.startswith("super::"):
                base, tree = list(mod[:-1]), tree[len("super::"):]
                while tree.startswith("super::"):
                    base, tree = base[:-1], tree[len("super::"):]
            else:
                continue
            for p in paths(base, tree):
                target = next(
                    (tuple(p[:i]) for i in range(len(p), -1, -1) if tuple(p[:i]) in mods), None
                )
                if target is not None and target != mod:
                    edges.setdefault(mod, set()).add(target)
    return edges


def cycles(edges: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[list[str]]:
    state: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []
    found: list[list[str]] = []

    def visit(u: tuple[str, ...]) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                found.append(["::".join(m) for m in stack[stack.index(v):] + [v]])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return found


def test_no_file_imports_a_file_that_imports_it_back():
    mods = modules()
    assert len(mods) > 50
    edges = imports(mods)
    assert ("analytics", "coverage", "halo") in edges[("run", "people")], "the check sees uses"
    assert cycles(edges) == []


def test_the_check_finds_a_cycle_through_three_files():
    a, b, c = ("a",), ("b",), ("c",)
    assert cycles({a: {b}, b: {c}, c: {a}}) == [["a", "b", "c", "a"]]
    assert paths([], "x::{y, z::{w as v}}") == [["x", "y"], ["x", "z", "w"]]


def test_no_source_file_is_over_700_lines():
    long = {str(p): n for p in SRC.rglob("*.rs") if (n := len(p.read_text().splitlines())) > 700}
    assert long == {}
