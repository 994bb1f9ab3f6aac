import math

import pytest
import torch

from src.run.data import GeneratedDataModule
from src.run.generators import GENERATORS, make_splits


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_deterministic_and_binary(name):
    a = GENERATORS[name](500, 0.1, torch.Generator().manual_seed(3))
    b = GENERATORS[name](500, 0.1, torch.Generator().manual_seed(3))
    c = GENERATORS[name](500, 0.1, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    x, y = a
    assert x.shape == (500, 2) and y.shape == (500,) and x.dtype == y.dtype == torch.float32
    assert set(y.tolist()) == {0.0, 1.0}


def test_xor_labels_follow_the_nearest_corner():
    x, y = GENERATORS["xor"](2000, 0.1, torch.Generator().manual_seed(0))
    corner = (x > 0.5).float()  # noise 0.1 leaves (almost) every point nearest its corner
    agree = ((corner[:, 0] != corner[:, 1]).float() == y).float().mean()
    assert agree > 0.99


def test_noise_free_generators_put_classes_where_documented():
    gen = torch.Generator().manual_seed(0)
    x, y = GENERATORS["xor"](400, 0.0, gen)
    assert torch.equal((x[:, 0] != x[:, 1]).float(), y)
    x, y = GENERATORS["circles"](400, 0.0, gen)
    assert torch.allclose(x.norm(dim=1), 1 - 0.5 * y, atol=1e-5)
    x, y = GENERATORS["moons"](400, 0.0, gen)
    upper = x[y == 0]
    assert torch.allclose(upper.norm(dim=1), torch.ones(len(upper)), atol=1e-5)
    lower = x[y == 1] - torch.tensor([1.0, 0.5])
    assert torch.allclose(lower.norm(dim=1), torch.ones(len(lower)), atol=1e-5)
    x, y = GENERATORS["spirals"](400, 0.0, gen)
    radius, angle = x.norm(dim=1), torch.atan2(x[:, 1], x[:, 0])
    t = (radius - 0.1) / 0.9  # a point's position along its spiral
    expected = 3 * math.pi * t + math.pi * y
    assert torch.allclose(torch.cos(angle), torch.cos(expected), atol=1e-4)


def test_splits_have_the_asked_sizes_and_do_not_overlap():
    splits = make_splits("xor", 30, 20, 10, 0.1, seed=1)
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [30, 20, 10]
    points = torch.cat([splits[s][0] for s in ("train", "val", "test")])
    assert len(torch.unique(points, dim=0)) == 60


def test_data_do_not_depend_on_the_run_seed_but_batch_order_does():
    a = GeneratedDataModule(n_train=50, seed=7, shuffle_seeds=[0], batch_size=8)
    b = GeneratedDataModule(n_train=50, seed=7, shuffle_seeds=[1], batch_size=8)
    a.setup(), b.setup()
    assert torch.equal(a.splits["train"].tensors[0], b.splits["train"].tensors[0])
    first_a, first_b = next(iter(a.train_dataloader())), next(iter(b.train_dataloader()))
    assert first_a[0].shape == (1, 8, 2) and not torch.equal(first_a[0], first_b[0])


def test_one_epoch_visits_every_training_point_once():
    dm = GeneratedDataModule(n_train=50, batch_size=8)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert [x.shape[1] for x, _ in batches] == [8] * 6 + [2]
    seen = torch.cat([x[0] for x, _ in batches])
    assert len(torch.unique(seen, dim=0)) == 50
    assert torch.allclose(seen.sum(0), dm.splits["train"].tensors[0].sum(0))


def test_validation_and_test_are_one_batch_each():
    dm = GeneratedDataModule(n_val=40, n_test=30)
    dm.setup()
    assert [len(x) for x, _ in dm.val_dataloader()] == [40]
    assert [len(x) for x, _ in dm.test_dataloader()] == [30]


def test_each_epoch_of_a_loader_is_a_new_order_and_a_single_runs():
    # One loader walked epoch after epoch, as Lightning does (it asks for the loader once).
    both = GeneratedDataModule(n_train=50, batch_size=8, shuffle_seeds=[0, 3])
    one = GeneratedDataModule(n_train=50, batch_size=8, shuffle_seeds=[3])
    both.setup(), one.setup()
    stacked, alone = both.train_dataloader(), one.train_dataloader()
    orders = []
    for epoch in range(3):
        xs = torch.cat([x for x, _ in stacked], dim=1)
        x = torch.cat([x for x, _ in alone], dim=1)
        assert torch.equal(xs[1], x[0]), epoch  # member 1 sees seed 3's batches
        assert not torch.equal(xs[0], xs[1])  # and member 0 its own
        orders.append(x[0])
    for epoch in (1, 2):
        assert not torch.equal(orders[epoch], orders[epoch - 1]), epoch
        assert sorted(orders[epoch].tolist()) == sorted(orders[epoch - 1].tolist())
