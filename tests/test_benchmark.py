"""The benchmark's bare sides train what a sweep trains: stacked or not, the same runs."""

import pytest
import torch

from src.benchmark import _defaults, bare_training
from src.run.generators import make_splits


def test_the_stacked_bare_loop_trains_each_seed_as_the_one_seed_loop_does():
    data, model, _ = _defaults()
    splits = make_splits(data.name, 300, 100, 100, data.noise, data.seed)
    torch.set_num_threads(1)
    stacked = bare_training(2, 5, [0, 1, 2], splits, data, model, epochs=3)
    alone = [bare_training(2, 5, [s], splits, data, model, epochs=3)[0] for s in range(3)]
    assert stacked == pytest.approx(alone, abs=1e-5)
    assert len(set(alone)) == 3  # the seeds differ: the check compares three runs, not one
