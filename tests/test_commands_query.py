"""`workbench query` (workbench.commands.query): CSV by the csv module, one-line headers for any name."""
from __future__ import annotations

import csv
import io
import json


def test_list_csv_quotes_names_with_commas_quotes_and_newlines():
    from workbench.commands.query import _list_text

    rows = [{"name": "beach, sunset", "key": "k1", "K": 8, "source_image": "/x/beach, sunset.png"},
            {"name": 'say "hi"\nnext line', "key": "k2", "K": None, "source_image": "/x/odd.png"}]
    text = _list_text(rows, "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == 3 and all(len(r) == 10 for r in parsed)  # was 12 fields, and a row split in two
    assert parsed[1][0] == "beach, sunset" and parsed[2][0] == 'say "hi"\nnext line' and parsed[2][4] == ""


def test_curve_header_stays_one_line_for_any_name():
    from workbench.commands.query import _curve_text

    text = _curve_text([1, 2], [0.5, 0.25], {"image": "a\nb, c", "key": "k"}, "csv")
    lines = text.splitlines()
    assert lines[0].startswith("# image=") and lines[1].startswith("timestep,") and len(lines) == 4
    assert json.loads(lines[0][len("# image="):].rsplit(" key=", 1)[0]) == "a\nb, c"
