"""The repository as committed: no file holds an absolute path of the machine it was written on, and
every public module has a test file named after it (docs/testing.md)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: a quoted, back-quoted or spaced absolute path under a user's or a session's folder
MACHINE_PATH = re.compile(r"[\"'` (=](/work/|/home/|/root/|/Users/)")
BINARY = (".png", ".jpg", ".jpeg", ".npz", ".safetensors", ".bin", ".zip", ".gif")


def test_no_committed_file_holds_a_machine_path():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing committed to read")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    hits = []
    for name in files:
        path = ROOT / name
        if name.endswith(BINARY) or not path.is_file() or path == Path(__file__).resolve():  # this file holds examples
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{name}:{n}: {line.strip()[:100]}")
    assert not hits, "absolute paths of a machine in committed files:\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should():
    assert MACHINE_PATH.search('"data_dir": "/work/shared/data/osie/data/stimuli"')
    assert MACHINE_PATH.search("--out /home/me/results")
    assert not MACHINE_PATH.search("tests/test_memory.py: '/workbench/' in f.filename")
    assert not MACHINE_PATH.search("workbench cubes DIR --store /tmp/samples-store")


PACKAGES = ("workbench", "cache", "analysis", "dashboards")
#: modules without a file of their own ("package/module": the one-line reason it cannot be tested alone);
#: none today, keep it short
UNTESTED_ALONE: dict[str, str] = {}


def module_test_names(package: str, module: Path) -> tuple[str, str]:
    """The two accepted test files of `package`/`module` (a path relative to the package, `.py` dropped):
    tests/test_<package>_<a>_<b>.py or tests/test_<a>_<b>.py, the module's path joined by "_"."""
    rel = "_".join(module.parts)
    return f"test_{package}_{rel}.py", f"test_{rel}.py"


def public_modules() -> list[tuple[str, Path]]:
    """(package, module path without .py) of every public module: not `__init__`, not a private `_x.py`."""
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT / package)
            if any(part.startswith("_") for part in rel.parts):
                continue
            out.append((package, rel.with_suffix("")))
    return out


def test_every_public_module_has_a_test_file():
    tests = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    missing = []
    for package, module in public_modules():
        name = f"{package}/{module.as_posix()}"
        if name in UNTESTED_ALONE or tests.intersection(module_test_names(package, module)):
            continue
        missing.append(f"{name}.py: add tests/{module_test_names(package, module)[0]}")
    assert not missing, "public modules without a test file (docs/testing.md):\n" + "\n".join(missing)
    stale = [m for m in UNTESTED_ALONE if not (ROOT / f"{m}.py").exists()]
    assert not stale, f"UNTESTED_ALONE names modules that no longer exist: {stale}"


def test_the_module_rule_names_the_expected_files():
    assert module_test_names("cache", Path("accessor")) == ("test_cache_accessor.py", "test_accessor.py")
    assert module_test_names("workbench", Path("editing/masks")) == ("test_workbench_editing_masks.py",
                                                                     "test_editing_masks.py")
    names = {f"{p}/{m.as_posix()}" for p, m in public_modules()}
    assert "workbench/ddim" in names and "workbench/adapters/loading" in names
    assert not any(n.endswith("__init__") or "/_" in n for n in names)
