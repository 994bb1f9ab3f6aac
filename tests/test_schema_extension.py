"""A new optimizer or data set is one registry entry: its factory and its own settings (with
their defaults and checks, src/run/schema.py). Registered here, not in src/, each is then a
key=value away, is checked and refused like the shipped ones, and trains."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from src.errors import ConfigError, require_float32
from src.run import schema
from src.run.data import GeneratedDataModule
from src.run.model import MLPClassifier
from src.run.training import train
from src.run.validation import memory_needed, run_size, validate

from .test_refusals import MODEL_KEYS


def make_rings(n: int, noise: float, gen: torch.Generator, n_rings: int):
    """Concentric rings of radius 1 to n_rings; a point's label is its ring's parity."""
    ring = torch.randint(0, n_rings, (n,), generator=gen)
    angle = 2 * math.pi * torch.rand(n, generator=gen)
    circle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    points = (ring + 1)[:, None] * circle
    return points + noise * torch.randn(n, 2, generator=gen), (ring % 2).float()


@pytest.fixture
def sgd_momentum():
    momentum = schema.setting(0.9, partial(require_float32))
    schema.register_optimizer("sgd_momentum", "torch.optim.SGD", state_copies=1, momentum=momentum)
    yield
    del schema.OPTIMIZERS["sgd_momentum"]
    schema.store_schemas()  # model's schema without model.momentum again


@pytest.fixture
def rings():
    n_rings = schema.setting(3, schema.positive_int)
    schema.register_generator("rings", f"{__name__}.make_rings", n_rings=n_rings)
    yield
    del schema.GENERATORS["rings"]
    del ConfigStore.instance().repo["data"]["rings.yaml"]  # the option data=rings


def test_a_registered_optimizer_trains_with_its_own_setting(make_cfg, sgd_momentum):
    cfg = make_cfg("model.optimizer=sgd_momentum", "model.momentum=0.5")
    optimizer = MLPClassifier.from_config(cfg.model, [0]).configure_optimizers()
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["momentum"] == 0.5
    assert train(cfg)["status"] == "ok"
    # every optimizer's settings are keys of model, with their default; adam ignores it
    assert make_cfg().model.momentum == 0.9
    validate(make_cfg("model.momentum=0.1"))


def test_a_registered_optimizers_setting_is_checked_and_listed(make_cfg, sgd_momentum):
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("model.optimizer=sgd_momentum", "model.momentum=-1"))
    assert str(error.value).startswith("model.momentum=-1 is not allowed: a number from 0 to")
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("+model.foo=1"))
    assert str(error.value) == f"model.foo=1 is not allowed: a key of model: {MODEL_KEYS}, momentum"


def test_the_memory_estimate_counts_the_optimizers_state(make_cfg, sgd_momentum):
    weights = "parameters, gradients and optimizer state"

    def state(optimizer):
        cfg = make_cfg("model.width=1000", f"model.optimizer={optimizer}", tiny=False)
        return memory_needed(run_size(cfg))[weights]

    n_params = 2 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 + 1
    assert [state(o) for o in ("sgd", "sgd_momentum", "adam")] == [
        4 * n_params * c for c in (4, 5, 6)
    ]


def test_a_registered_data_set_is_an_option_with_its_own_setting(make_cfg, rings):
    cfg = make_cfg("data=rings", "data.n_rings=2")
    assert (cfg.data.name, cfg.data.n_rings, cfg.data.seed) == ("rings", 2, 42)  # xor's values
    data = GeneratedDataModule.from_config(cfg.data, [0])
    data.setup()
    x, y = data.splits["train"].tensors
    radius = x.norm(dim=1)
    assert set(y.tolist()) == {0.0, 1.0}
    assert (radius[y == 1] > 1.5).all() and (radius[y == 0] < 1.5).all()  # noise 0.1
    assert train(cfg)["status"] == "ok"
    assert make_cfg("data=rings").data.n_rings == 3


def test_a_registered_data_sets_setting_is_checked_and_listed(make_cfg, rings):
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("data=rings", "data.n_rings=0"))
    assert str(error.value) == "data.n_rings=0 is not allowed: an integer from 1 to 2**63-1"
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("data=rings", "+data.size=3"))
    assert str(error.value) == (
        "data.size=3 is not allowed: a key of data: "
        "name, n_train, n_val, n_test, noise, batch_size, seed, n_rings"
    )
    with pytest.raises(ConfigError, match="data.n_rings=3 is not allowed: a key of data"):
        validate(make_cfg("data=rings", "data.name=xor"))  # xor reads no n_rings
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("data=xor", "data.name=rings"))  # xor's option has no n_rings
    assert str(error.value) == (
        "data.name='rings' is not allowed: chosen as data=rings, which brings its settings "
        "(n_rings)"
    )


def test_the_yamls_give_the_schemas_defaults(make_cfg):
    """conf/'s yamls repeat each schema's defaults with comments: they must not drift apart."""
    from src.run.loggers import LOGGER_SCHEMAS

    cfg = make_cfg(tiny=False)
    for group, fields in schema.group_settings("xor").items():
        assert dict(cfg[group]) == schema.defaults(fields), group
    for kind, fields in LOGGER_SCHEMAS.items():
        logger = make_cfg(f"logger={kind}").logger
        assert OmegaConf.to_container(logger) == schema.defaults(schema.settings(fields)), kind
