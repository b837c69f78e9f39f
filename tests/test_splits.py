"""workbench.splits: the one held-out split (sort key, small sets) and its one flag, --held-out."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.splits import DEFAULT_HELD_OUT, held_out_sort_key, split_held_out


def test_the_last_n_by_file_name_are_held_out_wherever_the_files_lie():
    paths = [Path("/z/c.jpg"), Path("/a/e.jpg"), Path("/y/a.jpg"), Path("/b/d.jpg"), Path("/x/b.jpg")]
    train, held = split_held_out(paths, 2)
    assert [p.name for p in train] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [p.name for p in held] == ["d.jpg", "e.jpg"]
    # the input order does not matter
    assert split_held_out(list(reversed(paths)), 2) == (train, held)


def test_same_names_in_other_folders_are_ordered_by_path():
    # CAT2000 repeats file names across categories: the path breaks the tie, whatever the listing order
    paths = [Path("Stimuli/Sketch/001.jpg"), Path("Stimuli/Action/001.jpg"), Path("Stimuli/Action/002.jpg")]
    train, held = split_held_out(paths, 1)
    assert held == [Path("Stimuli/Action/002.jpg")]
    assert train == [Path("Stimuli/Action/001.jpg"), Path("Stimuli/Sketch/001.jpg")]
    assert held_out_sort_key("Stimuli/Sketch/001.jpg") == ("001.jpg", str(Path("Stimuli/Sketch/001.jpg")))


def test_small_sets():
    paths = [Path(f"{i}.jpg") for i in range(3)]
    assert split_held_out(paths, 0) == (paths, [])
    assert split_held_out(paths, 3) == ([], paths)
    assert split_held_out(paths, 10) == ([], paths)
    with pytest.raises(WorkbenchError, match="--held-out 3 leaves no training images out of 3"):
        split_held_out(paths, 3, need_train=True)
    assert split_held_out(paths, 2, need_train=True) == (paths[:1], paths[1:])
    for bad in (-1, 1.5, True):
        with pytest.raises(WorkbenchError, match="--held-out must be a whole number >= 0"):
            split_held_out(paths, bad)
    assert split_held_out([], 5) == ([], [])


def test_every_user_of_the_split_agrees(tmp_path):
    """train, cubes --split, experiment --images and the information experiment hold out the same images."""
    from analysis.datasets import select_images
    from cache.sources import ImageSource
    from workbench.commands.cubes import _select_split

    names = ["b10.jpg", "a2.jpg", "c1.jpg", "a10.jpg", "b2.jpg", "a1.jpg"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    paths = sorted(tmp_path / n for n in names)
    want = sorted(names)[-2:]  # ['b2.jpg', 'c1.jpg'] (by name, as strings)
    assert [p.name for p in split_held_out(paths, 2)[1]] == want
    assert [p.name for p in select_images(paths, "held-out", held_out=2)] == want
    src = ImageSource("plain folder", tmp_path, tuple(paths))
    assert sorted(p.name for p in _select_split(src, "held-out", 2, None).images) == want
    assert sorted(p.name for p in _select_split(src, "train", 2, None).images) == sorted(names)[:-2]


def test_select_images_small_sets_say_what_is_wrong():
    from analysis.datasets import select_images

    paths = [Path(f"{i}.jpg") for i in range(4)]
    assert select_images(paths, "held-out", held_out=10) == paths  # all held out
    with pytest.raises(WorkbenchError, match="none is left for dev"):
        select_images(paths, "dev", held_out=10)
    with pytest.raises(WorkbenchError, match="holds no image out"):
        select_images(paths, "held-out", held_out=0)
    assert select_images(paths, "all", held_out=0) == paths


def _parse(argv):
    from workbench.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.mark.parametrize("command", [["train", "photos"], ["cubes", "photos", "--store", "s"],
                                     ["experiment", "paired", "--data", "d", "--out", "o"]])
def test_one_flag_name_and_the_old_spelling_still_works(command, capsys):
    assert _parse(command).held_out == DEFAULT_HELD_OUT
    assert _parse(command + ["--held-out", "7"]).held_out == 7
    assert capsys.readouterr().err == ""
    assert _parse(command + ["--holdout", "3"]).held_out == 3
    assert "--holdout is deprecated: use --held-out" in capsys.readouterr().err


def test_help_names_only_the_new_flag(capsys):
    from workbench.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("train", "cubes", "experiment"):
        text = sub[name].format_help()
        assert "--held-out" in text and "--holdout" not in text


def test_train_refuses_a_split_that_leaves_nothing_to_train_on(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from workbench.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(photos / f"p{i}.png")
    for flag in ("--held-out", "--holdout"):
        rc = main(["train", str(photos), "--checkpoints", str(tmp_path / "ck"), "--resolution", "8", "--init",
                   "scratch", "--nice", "0", flag, "3"])
        err = capsys.readouterr().err
        assert rc == 2 and "--held-out 3 leaves no training images out of 3: lower --held-out" in err, err
        assert "Traceback" not in err
