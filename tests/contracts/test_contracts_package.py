"""rookery_contracts ships alone inside the image and every Lambda bundle: standard library only, and
importable from a bare interpreter with nothing but its own folder on the path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rookery_contracts
from stage.paths import CONTRACTS_DIR

PACKAGE = Path(rookery_contracts.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports (from rookery_contracts...)"
            found.add(str(node.module).split(".")[0])
    return found


def test_the_package_is_the_one_on_the_path_and_alone_in_its_folder() -> None:
    assert PACKAGE == CONTRACTS_DIR / "rookery_contracts"
    assert sorted(p.name for p in CONTRACTS_DIR.iterdir() if p.name != "__pycache__") == ["rookery_contracts"]


def test_every_import_is_the_standard_library_or_the_package_itself() -> None:
    assert len(MODULES) >= 8
    for module in MODULES:
        outside = _imports(module) - set(sys.stdlib_module_names) - {"__future__", "rookery_contracts"}
        assert not outside, f"{module.name} imports {sorted(outside)}; rookery_contracts is stdlib only"


def test_every_module_imports_in_a_bare_interpreter_with_only_the_contracts_folder(tmp_path: Path) -> None:
    names = [f"rookery_contracts.{m.stem}" for m in MODULES if m.stem != "__init__"]
    probe = (
        "import sys, importlib\n"
        "sys.path[:0] = sys.argv[1:]\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "outside = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'__main__'}\n"
        "print(sorted(outside))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", probe, str(CONTRACTS_DIR)],
        env={},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['rookery_contracts']"
