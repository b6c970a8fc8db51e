"""Weight averaging: the warm-up decay, averaged parameters, copied buffers, and its place in checkpoints."""

import pytest
import torch
from torch import nn

from textseg.engine.ema import WeightAverage
from textseg.model.checkpoint import CheckpointError


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.register_buffer("count", torch.zeros(()))


def test_average_follows_the_warm_up_decay_and_copies_buffers() -> None:
    model = _Tiny()
    ema = WeightAverage(model, decay=0.9)
    expected = torch.zeros(3)
    for step in range(1, 31):
        with torch.no_grad():
            model.weight.fill_(float(step))
            model.count.fill_(float(step))
        ema.update(model)
        keep = min(0.9, (1 + step) / (10 + step))
        expected = keep * expected + (1 - keep) * step
    torch.testing.assert_close(ema.module.weight.detach(), expected)
    assert ema.module.count.item() == 30  # buffers are copied, not averaged
    assert float(ema.module.weight[0]) < 30  # the average lags the weights
    assert not ema.module.weight.requires_grad


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_the_open_interval_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="EMA decay"):
        WeightAverage(_Tiny(), decay)


def test_load_restores_average_and_steps() -> None:
    source = WeightAverage(_Tiny(), 0.5)
    source.module.weight.data.fill_(2.0)
    target = WeightAverage(_Tiny(), 0.5)
    target.load(source.state_dict(), steps=7)
    assert target.steps == 7 and torch.equal(target.module.weight, source.module.weight)


def test_load_of_weights_that_do_not_fit_names_the_file() -> None:
    target = WeightAverage(_Tiny(), 0.5)
    with pytest.raises(CheckpointError, match=r"run/last\.pt: decoder weights do not fit"):
        target.load({"weight": torch.zeros(3, 3)}, steps=7, path="run/last.pt")
    assert target.steps == 0
