"""Shared fixtures: configs composed in-process from conf/, sized to train in a blink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import src.train  # noqa: F401  (registers the resolvers conf/train.yaml uses)

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
# Small enough that a whole training takes well under a second.
TINY = [
    "data.n_train=64",
    "data.n_val=32",
    "data.n_test=32",
    "data.batch_size=16",
    "trainer.max_epochs=2",
]


@pytest.fixture
def make_cfg(tmp_path):
    """compose('train') with overrides, writing under tmp_path, logger off unless overridden."""

    def _make(*overrides: str, tiny: bool = True, name: str = "train"):
        defaults = ["logger=none", f"output_dir={tmp_path / 'run'}"] + (TINY if tiny else [])
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(name, overrides=defaults + list(overrides))

    return _make


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch, tmp_path):
    # Never touch the network or the user's wandb settings from a test.
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    os.environ.pop("WANDB_API_KEY", None)


def wandb_records(wandb_dir: Path) -> list[bytes]:
    """The transaction logs of the offline runs under `wandb_dir`, once wandb wrote them.

    wandb.finish() can return before wandb's service has written the run's file out;
    wandb.teardown() waits for the service to end (the next run starts a new one).
    """
    import wandb

    wandb.teardown()
    return [p.read_bytes() for p in sorted(Path(wandb_dir).glob("offline-run-*/*.wandb"))]
