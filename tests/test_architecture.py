"""The package's three layers, checked from the source: imports point one way, repro stays torch-free."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "accel"
BASE = {"accel", "accel.atomic", "accel.checks"}  # standard-library-only helpers every layer may use


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every accel module ``path`` imports (absolute or relative, at any depth of the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("accel")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("accel"):
                found.add(target)
    return found


def _layer(module: str) -> str:
    if module in BASE:
        return "base"
    if module.startswith("accel.repro"):
        return "repro"
    if module.startswith("accel.experiments"):
        return "experiments"
    return "library"


ALLOWED = {"base": {"base"}, "library": {"base", "library"}, "experiments": {"base", "library", "experiments"},
           "repro": {"base", "repro"}}
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_one_way(path):
    layer = _layer(_module_name(path))
    if path == PACKAGE / "__init__.py":
        return  # lazy re-exports by name (strings), resolved at attribute access
    bad = sorted(m for m in _imports(path) if _layer(m) not in ALLOWED[layer])
    assert not bad, f"{_module_name(path)} ({layer}) imports {bad}"


def test_the_reproducibility_layer_imports_no_torch():
    repro = [_module_name(p) for p in sorted((PACKAGE / "repro").glob("*.py"))]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in repro) +
            "import accel\nbad = [m for m in ('torch', 'pytorch_lightning') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_modules_are_small_and_the_top_level_is_short():
    long = {_module_name(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
    top = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 12, top


def test_lazy_exports_resolve():
    import accel
    for name in accel.__all__:
        assert getattr(accel, name) is not None, name
