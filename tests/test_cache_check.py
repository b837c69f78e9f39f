"""cache.check through its Python API: a clean store's report, one damaged cube found with its
line, `repair` clears exactly that cube and leaves the others as they were (every kind of damage,
through the command line: tests/test_cache_meaning.py)."""
from __future__ import annotations

import numpy as np
import zarr

from cache.check import Damage, StoreReport, check_store, repair
from cache.store import CubeStore
from devtools.synthetic import synthetic_cube


def _store(tmp_path):
    st = CubeStore(tmp_path / "store")
    keys = [st.put(synthetic_cube(8, 8, 6, name=f"c{i}", seed=i)) for i in range(3)]
    return st, keys


def test_a_clean_store_reports_every_cube_and_no_damage(tmp_path):
    st, keys = _store(tmp_path)
    r = check_store(st)
    assert r.ok and r.damaged == [] and r.checked == 3
    assert r.groups == len({row["group"] for row in st.index()})
    seen = []
    check_store(st, progress=lambda p: seen.append((p.phase, p.done, p.total)))
    assert seen == [("check", i + 1, r.groups) for i in range(r.groups)]


def test_a_value_no_cube_can_hold_is_found_and_repair_clears_only_that_cube(tmp_path):
    st, keys = _store(tmp_path)
    a = {row["key"]: row for row in st.index()}[keys[0]]
    rate = zarr.open_array(str(st.groups_dir / f"{a['group']}.zarr" / "rate"), mode="r+")
    rate[(a["slot"],) + (0,) * (rate.ndim - 1)] = np.nan  # through zarr: its checksum stays valid
    before = {k: st.open(k).load() for k in keys[1:]}

    r = check_store(st)
    assert not r.ok and r.checked == 3 and len(r.damaged) == 1
    (d,) = r.damaged
    assert (d.group, d.slot, d.key, d.name, d.kind) == (a["group"], a["slot"], keys[0], "c0", "slot")
    assert d.line().startswith(f"DAMAGED c0 {keys[0]} ({a['group']}[{a['slot']}]): chunk ")

    assert repair(st, r) == [d]
    assert check_store(st).ok
    assert keys[0] not in st and all(k in st for k in keys[1:])  # cleared: the next `cubes` recomputes it
    for k, ds in before.items():
        np.testing.assert_array_equal(st.open(k)["rate"].values, ds["rate"].values)


def test_damage_line_and_report_ok():
    d = Damage("g1", None, "", "", "zarr.json unreadable (all its cubes)", "group")
    assert d.line() == "DAMAGED ? - (g1): zarr.json unreadable (all its cubes)"
    assert StoreReport().ok and not StoreReport(damaged=[d]).ok
