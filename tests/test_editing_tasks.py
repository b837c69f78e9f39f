"""workbench.editing.tasks: each task's rate term and the feature-alignment term, by hand."""
from __future__ import annotations

import pytest
import torch

from workbench.editing import EditConfig
from workbench.editing.tasks import TaskLoss, feature_alignment, needs_reference, task_loss, uses_features


def test_each_task_gets_its_rate_term():
    r = torch.tensor([1.0, 2.0, 6.0])
    ref = torch.tensor([2.0, 2.0, 2.0])
    assert task_loss(EditConfig(task="transfer"), has_ref=True) == TaskLoss("match")
    assert float(TaskLoss("match")(r, ref)) == pytest.approx(5 / 3)
    assert task_loss(EditConfig(task="removal"), has_ref=True).mode == "match"
    removal = task_loss(EditConfig(task="removal", rate_weight=0.5), has_ref=False)
    assert removal == TaskLoss("minimise", 0.5) and float(removal(r)) == pytest.approx(0.5 * 3)
    sal = task_loss(EditConfig(task="saliency", rate_weight=2.0, direction=-1), has_ref=False)
    assert sal == TaskLoss("saliency", 2.0, -1) and float(sal(r)) == pytest.approx(-2 * 3)
    assert needs_reference(EditConfig(task="transfer"), False) and not needs_reference(EditConfig(task="saliency"), True)


def test_feature_alignment_is_the_mean_relative_squared_distance():
    f0 = [torch.tensor([3.0, 4.0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    f = [torch.tensor([3.0, 5.0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    assert float(feature_alignment(f, f0)) == pytest.approx((1 / 25 + 0) / 2)
    assert uses_features(EditConfig(task="blending", feature_weight=0.1))
    assert not uses_features(EditConfig(task="blending", feature_weight=0.0))
    assert not uses_features(EditConfig(task="removal", feature_weight=0.1))
