"""Numbers a run cannot hold: every numeric key of both apps' configs, set to an extreme the
command line lets through (1e400 and -1e400 parse as +-inf, 2**70 and -2**70 overflow int64),
ends in a one-line refusal naming the key or in a finished run, never in a traceback. The
refusals are found in-process (the validation a run starts with); a few are tried on the
command line, where the overflowing lr and seed used to end in torch's tracebacks."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.autodiff.schedules import SCHEDULES
from src.autodiff.train import check_config
from src.autodiff.train import train as train_autodiff
from src.errors import FLOAT32_MAX, FLOAT32_TINY, SEED_MAX, ConfigError
from src.run.training import train
from src.run.validation import validate

from .conftest import CONF, ROOT

EXTREMES = ["1e400", "-1e400", str(2**70), str(-(2**70))]
# Keys that take numbers but default to null, so the walk would not find them.
NULL_BY_DEFAULT = {"train": ["seeds"], "autodiff": ["train.batch_size"]}


def numeric_keys(cfg: DictConfig) -> list[str]:
    """Every key of `cfg` (Hydra's own part left out) whose value is a number or a list of
    numbers, dotted."""
    found = []

    def walk(node, prefix: str) -> None:
        for key, value in node.items_ex(resolve=False):
            path = f"{prefix}{key}"
            if isinstance(value, DictConfig):
                walk(value, f"{path}.")
            elif _is_numeric(value) or (
                isinstance(value, ListConfig) and value and all(map(_is_numeric, value))
            ):
                found.append(path)

    walk(cfg, "")
    return found


def _is_numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_override(key: str, value: str, example: DictConfig) -> str:
    """key=value, or key=[value] for a key that takes a list."""
    is_list = key == "seeds" or isinstance(OmegaConf.select(example, key), ListConfig)
    return f"{key}=[{value}]" if is_list else f"{key}={value}"


def with_override(cfg: DictConfig, override: str) -> DictConfig:
    """`cfg` with one command-line override, its value parsed as Hydra parses it (composing
    again for every value would take most of these tests' time)."""
    parsed = OverridesParser.create().parse_override(override)
    changed = copy.deepcopy(cfg)
    OmegaConf.update(changed, parsed.key_or_group, parsed.value(), merge=False)
    return changed


def check_one_line(error: ConfigError, key: str) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(key), message
    assert error.key.split("[")[0] == key, (error.key, key)


# -- python -m src.train -----------------------------------------------------------------------


def test_the_walk_finds_every_numeric_key_of_the_run_config(make_cfg):
    keys = numeric_keys(make_cfg("logger=wandb"))
    assert set(keys) == {
        "seed",
        "model.depth",
        "model.width",
        "model.lr",
        "data.n_train",
        "data.n_val",
        "data.n_test",
        "data.noise",
        "data.batch_size",
        "data.seed",
        "trainer.max_epochs",
        "trainer.devices",
        "trainer.num_threads",
        "logger.watch_log_freq",
    }


def test_every_numeric_key_at_an_extreme_is_refused_in_one_line_or_runs(make_cfg):
    example, no_logger = make_cfg("logger=wandb"), make_cfg()
    finished = []
    for key in numeric_keys(example) + NULL_BY_DEFAULT["train"]:
        for value in EXTREMES:
            override = as_override(key, value, example)
            try:
                validate(with_override(example, override))
            except ConfigError as error:
                check_one_line(error, key)
                continue
            assert not key.startswith("logger."), override  # runs below without a logger
            metrics = train(with_override(no_logger, override))
            assert metrics["status"] in ("ok", "diverged"), (override, metrics)
            finished.append(override)
    # float32 holds 2**70 (about 1.2e21): the only extremes that train
    assert sorted(finished) == [f"data.noise={2**70}", f"model.lr={2**70}"]


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "model.lr=1e39",
            "error: model.lr=1e+39 is not allowed: a number from 1.18e-38 to 3.4e+38 "
            "(float32, the model's dtype)",
        ),
        (
            f"seed={2**70}",
            f"error: seed={2**70} is not allowed: an integer from 0 to 2**32-1",
        ),
    ],
)
def test_an_overflowing_lr_or_seed_is_one_line_on_the_command_line(tmp_path, override, message):
    done = subprocess.run(
        [sys.executable, "-m", "src.train", override, "logger=none", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.splitlines() == [message], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not list(tmp_path.glob("**/metrics.json")) and not list(tmp_path.glob("**/model.pt"))


def test_the_bounds_are_what_the_generators_and_the_dtype_take():
    assert torch.finfo(torch.float32).max == FLOAT32_MAX
    assert torch.finfo(torch.float32).tiny == FLOAT32_TINY
    assert torch.tensor(FLOAT32_MAX * 1.0001, dtype=torch.float32).isinf()
    for seed in (0, SEED_MAX):  # every generator the code seeds takes both ends
        torch.Generator().manual_seed(seed)
        np.random.RandomState(seed)
        np.random.default_rng(seed)
    with pytest.raises(ValueError):
        np.random.RandomState(SEED_MAX + 1)  # the autodiff data's, Optuna samplers'
    with pytest.raises((ValueError, RuntimeError, OverflowError)):
        torch.Generator().manual_seed(2**64)  # torch's own end, past 64 bits
    minus_one, top = torch.Generator().manual_seed(-1), torch.Generator().manual_seed(2**64 - 1)
    assert torch.equal(torch.rand(3, generator=minus_one), torch.rand(3, generator=top))


# -- python -m src.autodiff.train ----------------------------------------------------------------


def autodiff_cfg(tmp_path, *overrides: str) -> DictConfig:
    base = ["logger=none", "print_every=0", f"output_dir={tmp_path / 'run'}", "train.epochs=3"]
    with initialize_config_dir(config_dir=str(CONF / "autodiff"), version_base="1.3"):
        return compose("train", overrides=[*base, *overrides])


# The schedule that reads a schedule key (the others are checked, not used).
SCHEDULE_OF = {"schedule.gamma": "exponential", "schedule.step_size": "step"}


def test_every_numeric_key_of_the_autodiff_app_at_an_extreme_is_refused_or_runs(tmp_path):
    example = autodiff_cfg(tmp_path)
    schedules = {name: autodiff_cfg(tmp_path, f"schedule.name={name}") for name in SCHEDULES}
    keys = numeric_keys(example) + NULL_BY_DEFAULT["autodiff"]
    assert {"seed", "data.n_samples", "model.hidden", "train.epochs", "print_every"} <= set(keys)
    finished = []
    for key in keys:
        for value in EXTREMES:
            override = as_override(key, value, example)
            schedule = SCHEDULE_OF.get(key, "adaptive" if key.startswith("schedule.") else None)
            cfg = with_override(schedules[schedule] if schedule else example, override)
            try:
                check_config(cfg)
            except ConfigError as error:
                check_one_line(error, key)
                continue
            metrics = train_autodiff(cfg)
            assert metrics["status"] in ("ok", "diverged"), (override, metrics)
            finished.append(override)
    # float64 holds 2**70: the numbers that may be that large train (or diverge)
    assert sorted(finished) == [
        f"{key}={2**70}"
        for key in ("data.noise", "model.init_std", "schedule.max_factor", "train.lr")
    ]
