"""workbench.adapters.transformer: patch tokens back on their grid, and the truncated block list restored."""
from __future__ import annotations

import pytest
import torch

from workbench.adapters.transformer import first_blocks, tokens_to_grid


def test_tokens_to_grid_is_row_major():
    tokens = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)  # (B, h*w, D), h=2, w=3
    grid = tokens_to_grid(tokens, 2, 3)
    assert grid.shape == (2, 3, 2, 3)
    for y in range(2):
        for x in range(3):
            torch.testing.assert_close(grid[1, :, y, x], tokens[1, y * 3 + x])
    with pytest.raises(ValueError, match="6 tokens do not fill a 2x2 patch grid"):
        tokens_to_grid(tokens, 2, 2)


def test_first_blocks_runs_m_blocks_captures_the_last_and_restores():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer_blocks = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(3))

        def forward(self, x):
            for b in self.transformer_blocks:
                x = b(x)
            return x

    net, x = Net(), torch.randn(1, 2)
    blocks = net.transformer_blocks
    with torch.no_grad(), first_blocks(net, 2) as captured:
        out = net(x)
        assert len(net.transformer_blocks) == 2
    torch.testing.assert_close(out, blocks[1](blocks[0](x)))
    torch.testing.assert_close(captured[0], out)
    assert net.transformer_blocks is blocks and not blocks[1]._forward_hooks
