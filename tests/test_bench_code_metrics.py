"""bench/code_metrics.py: what it records about the tree it measured."""
from __future__ import annotations

import subprocess
from pathlib import Path

from bench.code_metrics import tree_name

ROOT = Path(__file__).resolve().parents[1]


def test_tree_is_named_by_its_commit_not_by_the_machine_path():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    if not head:
        import pytest

        pytest.skip("not a git checkout")
    name = tree_name(ROOT)
    assert name.split("-dirty")[0].startswith(head[:7]) and "/" not in name


def test_a_folder_outside_git_is_named_by_its_folder(tmp_path):
    tree = tmp_path / "before"
    tree.mkdir()
    assert tree_name(tree) == "before"
