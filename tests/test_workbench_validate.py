"""workbench.validate: bounds and the one-line messages that name them."""
from __future__ import annotations

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.validate import (check_channel, check_dtype, check_int, check_memory_size, check_probe_cap, check_real,
                                check_refine_to, check_resolution, check_scheduler_address, check_scheduler_config,
                                check_stability, check_t_b, check_timestep, check_window)


def test_numbers_in_range_pass_and_others_name_the_range():
    assert check_int("K", 3, minimum=1, maximum=4) == 3
    for bad in (0, 5, 2.0, True, "3"):
        with pytest.raises(WorkbenchError, match="K must be a whole number from 1 to 4"):
            check_int("K", bad, minimum=1, maximum=4)
    assert check_real("lr", 1, minimum=0, open_min=True) == 1.0
    with pytest.raises(WorkbenchError, match=r"lr must be a finite number > 0 \(why\), got 0"):
        check_real("lr", 0, minimum=0, open_min=True, why="why")
    with pytest.raises(WorkbenchError, match="must be a finite number finite, got nan"):
        check_real("x", float("nan"))
    assert check_timestep(420.0) == 420 and check_channel(None) is None and check_channel(2, channels=3) == 2
    with pytest.raises(WorkbenchError, match="the model has 3 channels"):
        check_channel(3, channels=3)


def test_fluctuation_and_probe_bounds():
    assert check_window(3, n_kept=5) == 3 and check_t_b(999, num_train_timesteps=1000) == 999.0
    with pytest.raises(WorkbenchError, match="only 1 timesteps lie above t_b, fewer than the window L=3"):
        check_window(3, n_kept=1)
    with pytest.raises(WorkbenchError, match="t_b must be a finite number >= 0 and <= 999"):
        check_t_b(1000, num_train_timesteps=1000)
    assert check_stability(0.98) == 0.98 and check_probe_cap(None, K=8) is None and check_probe_cap(8, K=8) == 8
    with pytest.raises(WorkbenchError, match="from 8 to 4096"):
        check_probe_cap(7, K=8)
    for R in (0, 1, float("inf")):
        with pytest.raises(WorkbenchError, match="stability target R"):
            check_stability(R)
    assert check_refine_to(64, estimator="hutchinson", definition="h") == 64
    with pytest.raises(WorkbenchError, match="refinement needs Hutchinson cubes"):
        check_refine_to(64, estimator="rsvd", definition="h")


def test_resolution_dtype_address_memory_and_scheduler():
    assert check_resolution(64, multiple=8) == 64
    with pytest.raises(WorkbenchError, match=r"multiple of 8 \(the U-Net halves it 3 times\), got 60"):
        check_resolution(60, multiple=8)
    assert check_dtype("bfloat16") is torch.bfloat16 and check_dtype(torch.float64) is torch.float64
    with pytest.raises(WorkbenchError, match="dtype must be one of"):
        check_dtype("int8")
    assert check_scheduler_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786" and check_scheduler_address(None) is None
    for bad in ("10.0.0.5:8786", "tcp://host:0", "http://host:1"):
        with pytest.raises(WorkbenchError, match="dask scheduler address"):
            check_scheduler_address(bad)
    assert check_memory_size("auto") is None and check_memory_size("512MiB") == 512 * 2**20
    with pytest.raises(WorkbenchError, match="memory size must be from 16MiB to 1PiB, got '1MiB'"):
        check_memory_size("1MiB")
    assert check_scheduler_config({"num_train_timesteps": 10}, "s.json") == {"num_train_timesteps": 10}
    with pytest.raises(WorkbenchError, match="s.json: beta_start and beta_end"):
        check_scheduler_config({"beta_start": 0.5, "beta_end": 0.1}, "s.json")
    with pytest.raises(WorkbenchError, match="must hold a JSON object"):
        check_scheduler_config([], "s.json")
