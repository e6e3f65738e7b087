"""The package's imports point one way, down the layers.

Layers, bottom up: ``errors`` / ``image_io``; ``model`` (its NumPy modules define the
geometry that coding and decoding share) and ``regions``; ``coding`` (the bitstream,
the entropy coder, the networks' parameter layouts); ``decoder``; then ``eval``,
``train``, ``sweeps`` and the front ends (``api``, ``cli``, ``presets``). Every import
counts, also one inside a function.
"""
import ast
import pathlib

import pytest

import moric_jax

ROOT = pathlib.Path(moric_jax.__file__).parent
EXTENSIONS = {"moric_jax.coding._ans", "moric_jax.decoder._synth"}
FRONT = {"api", "cli", "presets", "__main__"}

# package -> the top-level parts of moric_jax it must never import
FORBIDDEN = {
    "model": {"coding", "decoder", "train", "sweeps", "eval", "regions"} | FRONT,
    "regions": {"model", "coding", "decoder", "train", "sweeps", "eval"} | FRONT,
    "coding": {"decoder", "train", "sweeps", "eval", "regions"} | FRONT,
    "decoder": {"train", "sweeps", "eval"} | FRONT,
}


def _module_names() -> dict[str, pathlib.Path]:
  mods = {}
  for p in ROOT.rglob("*.py"):
    parts = ("moric_jax",) + p.relative_to(ROOT).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    mods[name] = p
  return mods


def import_graph() -> dict[str, set[str]]:
  """module -> the moric_jax modules it imports (C extensions as leaves)."""
  mods = _module_names()
  known = set(mods) | EXTENSIONS
  graph = {}
  for name, path in mods.items():
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        out.update(a.name for a in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
          base = ".".join(up + ([base] if base else []))
        for a in node.names:
          full = f"{base}.{a.name}"
          out.add(full if full in known else base)
    graph[name] = {m for m in out if m in known and m != name}
  return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
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
        found.append(sorted(comp))

  for v in graph:
    if v not in index:
      visit(v)
  return found


def test_no_import_cycles():
  assert _cycles(import_graph()) == []


def test_cycle_finder_finds_a_circle():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
  bad = []
  for mod, deps in import_graph().items():
    if mod.split(".")[1:2] != [package]:
      continue
    for dep in deps:
      part = dep.split(".")[1] if "." in dep else ""
      if part in FORBIDDEN[package]:
        bad.append(f"{mod} -> {dep}")
  assert not bad, bad
