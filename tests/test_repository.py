"""The repository as committed: no file holds an absolute path of the machine it was written on."""
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
