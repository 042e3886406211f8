"""The package's shape: layers that import only downwards, no import cycle, modules one can read in a sitting,
and the Caffe-free layers importable (and their tests passing) with pycaffe out of reach."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "dgn_am"
#: Each layer may import from itself and the layers before it, never after.
LAYERS = ("common", "core", "backend", "assets", "results", "runs", "mini", "cli")
MAX_LINES = 400
#: The test folders that need no pycaffe; they run once more below with ``import caffe`` made to fail.
CAFFE_FREE_TESTS = ("tests/core", "tests/results/test_montage_compare.py", "tests/mini/test_mini_data.py")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, at any depth of its code (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dgn_am")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("dgn_am"):
                source = node.module
            else:
                continue
            for alias in node.names:  # ``from pkg import module`` imports the module itself
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in modules else source)
    return {m for m in found if m in modules and m != name}


def _layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def test_layers_import_only_downwards():
    modules = _modules()
    wrong = [f"{name} -> {dep}" for name, path in modules.items() for dep in sorted(_imports(name, path, modules))
             if _layer(dep) > _layer(name)]
    assert not wrong, wrong
    # and the layers' order is not vacuous: each is imported by a later one
    used = {_layer(dep) for name, path in modules.items() for dep in _imports(name, path, modules)
            if _layer(dep) < _layer(name)}
    assert used >= set(range(len(LAYERS) - 1))


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(trail[trail.index(dep):] + [dep] if dep in trail else [node, dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_the_cycle_check_finds_a_cycle(tmp_path):
    # the same walk on two modules that import each other must report them
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import x\n")
    modules = {"dgn_am.x.a": tmp_path / "a.py", "dgn_am.x.b": tmp_path / "b.py"}
    assert _imports("dgn_am.x.a", modules["dgn_am.x.a"], modules) == {"dgn_am.x.b"}
    assert _imports("dgn_am.x.b", modules["dgn_am.x.b"], modules) == {"dgn_am.x.a"}


def test_every_package_folder_is_a_package():
    # without __init__.py a folder is a namespace package, which a non-editable install (the Docker image's) drops
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert {f.name for f in folders} >= set(LAYERS)
    assert not [f for f in folders if not (f / "__init__.py").is_file()]


def test_modules_are_small():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_only_backend_imports_pycaffe():
    offenders = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "caffe" or n.startswith("caffe.") for n in names) and not name.startswith("dgn_am.backend"):
                offenders.append(name)
    assert not offenders, offenders


def test_caffe_free_layers_and_tests_run_without_pycaffe():
    # ``sys.modules["caffe"] = None`` makes every ``import caffe`` fail, as on a machine without pycaffe
    root = PACKAGE.parents[1]
    code = ("import sys; sys.modules['caffe'] = None\n"
            "import dgn_am.common.files, dgn_am.core.algorithm, dgn_am.core.pixels, dgn_am.core.bounds\n"
            "import dgn_am.backend.netinfo, dgn_am.assets.catalogue, dgn_am.results.montage, dgn_am.results.compare\n"
            "import pytest\n"
            f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{list(CAFFE_FREE_TESTS)!r}]))\n")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env=env,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.lower().split("passed")[-1]
