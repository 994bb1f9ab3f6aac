"""The benchmark's bare sides train what a sweep trains: stacked or not, the same runs, with the
sweep's settings."""

from types import SimpleNamespace

import pytest
import torch

from src.benchmark import bare_training, settings
from src.run.generators import make_splits


def _val_losses(overrides: list[str], seed_groups: list[list[int]]) -> list[float]:
    config = settings(overrides)
    data, model = SimpleNamespace(**config["data"]), SimpleNamespace(**config["model"])
    splits = make_splits(data.name, 300, 100, 100, data.noise, data.seed)
    torch.set_num_threads(1)
    return [
        loss
        for seeds in seed_groups
        for loss in bare_training(2, 5, seeds, splits, data, model, epochs=3)
    ]


@pytest.mark.parametrize("options", [[], ["model.norm=layer", "model.residual=true"]])
def test_the_stacked_bare_loop_trains_each_seed_as_the_one_seed_loop_does(options):
    stacked = _val_losses(options, [[0, 1, 2]])
    alone = _val_losses(options, [[0], [1], [2]])
    assert stacked == pytest.approx(alone, abs=1e-5)
    assert len(set(alone)) == 3  # the seeds differ: the check compares three runs, not one


def test_the_bare_loops_follow_the_sweeps_model_options():
    assert settings(["model.norm=layer"])["model"]["norm"] == "layer"
    plain = _val_losses([], [[0]])
    assert _val_losses(["model.norm=layer"], [[0]]) != pytest.approx(plain, abs=1e-4)
