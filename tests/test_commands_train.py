"""`workbench train` (workbench.commands.train): its flags."""
from __future__ import annotations


def test_train_command_bf16_flags():
    from workbench.cli import build_parser

    p = build_parser()
    base = ["train", "photos"]
    assert p.parse_args(base).bf16 is None
    assert p.parse_args(base + ["--bf16"]).bf16 is True and p.parse_args(base + ["--no-bf16"]).bf16 is False
