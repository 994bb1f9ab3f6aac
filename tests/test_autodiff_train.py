"""The fitting study: configs compose, experiments run a few epochs, the default reproduces
the course's losses, and bad values are refused before training."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.autodiff import train as autodiff_train
from src.autodiff.train import SIZE_DEFAULTS, check_config, train
from src.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "autodiff"


def make_cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "train",
            overrides=["logger=none", "print_every=0", f"output_dir={tmp_path}", *overrides],
        )


def test_default_config_is_the_courses_setup(tmp_path):
    cfg = make_cfg(tmp_path)
    assert list(cfg.model.hidden) == [8] and cfg.model.activation == "relu"
    assert cfg.model.output_activation == "identity" and cfg.model.init_std == 0.1
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (2e-3, 200, None)
    assert cfg.train.loss == "sum" and cfg.schedule.name == "constant"
    assert cfg.backend == "var" and (cfg.data.noise, cfg.data.seed) == (0.5, 42)


def test_default_run_reproduces_the_courses_losses(tmp_path):
    # the matrix backend computes the same numbers as Var (see below), 200x faster
    metrics = train(make_cfg(tmp_path, "backend=matrix"))
    assert metrics["status"] == "ok" and metrics["epochs_run"] == 200
    assert metrics["train_loss"] == pytest.approx(11.9, abs=0.2)  # course: about 11.9
    assert metrics["val_loss"] == pytest.approx(9.0, abs=0.2)  # course: about 9.0


@pytest.mark.parametrize("overrides", [[], ["train.batch_size=16"]])
def test_both_backends_give_the_same_history(tmp_path, overrides):
    runs = [
        train(make_cfg(tmp_path / b, f"backend={b}", "train.epochs=5", *overrides))
        for b in ("var", "matrix")
    ]
    for key in ("train_loss", "val_loss"):
        assert runs[0]["history"][key] == pytest.approx(runs[1]["history"][key], rel=1e-9)
    assert runs[0]["test_loss"] == pytest.approx(runs[1]["test_loss"], rel=1e-9)


@pytest.mark.parametrize(
    "experiment, hidden", [("underfit", [32]), ("overfit", [64, 64]), ("goodfit", [10])]
)
def test_experiments_compose_and_run(tmp_path, experiment, hidden):
    cfg = make_cfg(tmp_path, f"experiment={experiment}", "train.epochs=3")
    assert list(cfg.model.hidden) == hidden
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["epochs_run"] == 3
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["history"]["epoch"] == [1, 2, 3]
    assert saved["val_loss"] == pytest.approx(metrics["val_loss"])
    for name in ("loss_curves.png", "fit.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_experiment_settings_differ_as_intended(tmp_path):
    under, over, good = (
        make_cfg(tmp_path, f"experiment={e}") for e in ("underfit", "overfit", "goodfit")
    )
    assert under.train.epochs == 20 and over.train.epochs == 10_000
    assert over.backend == "matrix" and over.train.batch_size == 8
    assert good.model.activation == "tanh" and good.train.epochs == 3000


def test_3d_data_and_schedules_run(tmp_path):
    for schedule in ("step", "exponential", "adaptive"):
        metrics = train(
            make_cfg(
                tmp_path,
                "data.dims=3",
                "model.hidden=[16]",
                "backend=matrix",
                f"schedule.name={schedule}",
                "train.epochs=150",
                "schedule.step_size=50",
                "schedule.gamma=0.9",
            )
        )
        assert metrics["status"] == "ok"
        assert metrics["train_loss"] < metrics["history"]["train_loss"][0]
    lrs = metrics["history"]["lr"]  # the adaptive run: rate constant until its window ends
    assert set(lrs[:125]) == {2e-3} and len(set(lrs[125:])) > 1


def test_divergence_is_reported_not_raised(tmp_path):
    for backend in ("var", "matrix"):
        metrics = train(
            make_cfg(tmp_path, f"backend={backend}", "train.lr=5.0", "train.epochs=100")
        )
        assert metrics["status"] == "diverged" and metrics["epochs_run"] < 100


def test_csv_and_wandb_loggers(tmp_path, monkeypatch):
    train(make_cfg(tmp_path, "logger=csv", "train.epochs=4", "backend=matrix"))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and float(rows[0]["lr"]) == 2e-3

    monkeypatch.setenv("WANDB_MODE", "disabled")  # the environment wins over wandb.mode
    metrics = train(
        make_cfg(
            tmp_path / "w", "logger=wandb", "wandb.mode=offline", "train.epochs=2", "backend=matrix"
        )
    )
    assert metrics["status"] == "ok" and not (tmp_path / "w" / "wandb").exists()


@pytest.mark.parametrize(
    "override, key",
    [
        ("backend=cuda", "backend"),
        ("model.activation=softplus", "model.activation"),
        ("model.output_activation=gelu", "model.output_activation"),
        ("model.initializer=xavier", "model.initializer"),
        ("model.hidden=[8,-1]", "model.hidden[1]"),
        ("model.hidden=8", "model.hidden"),
        ("model.init_std=0", "model.init_std"),
        ("train.lr=0", "train.lr"),
        ("train.lr=-0.1", "train.lr"),
        ("train.epochs=0", "train.epochs"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.loss=l1", "train.loss"),
        ("schedule.name=cosine", "schedule.name"),
        ("schedule.gamma=1.5", "schedule.gamma"),
        ("schedule.window_end=50", "schedule.window_end"),
        ("schedule.gain=1.0", "schedule.gain"),
        ("data.dims=2", "data.dims"),
        ("data.n_samples=5", "data.n_samples"),
        ("data.noise=-1", "data.noise"),
        ("logger=tensorboard", "logger"),
        ("wandb.mode=sometimes", "wandb.mode"),
        ("seed=-1", "seed"),
        ("seed=4294967296", "seed"),  # 2**32: numpy's RandomState stops before it
        ("data.seed=99999999999999999999", "data.seed"),
        ("train.lr=1e400", "train.lr"),  # inf
        ("data.n_samples=100000000000000000000", "data.n_samples"),  # over int64
        ("model.hidden=[8,1180591620717411303424]", "model.hidden[1]"),
    ],
)
def test_bad_values_are_refused(tmp_path, override, key):
    with pytest.raises(ConfigError) as error:
        train(make_cfg(tmp_path, override))
    assert error.value.key == key
    assert not (tmp_path / "metrics.json").exists()


def test_command_line_refuses_a_bad_value_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [sys.executable, "-m", "src.autodiff.train", "train.lr=-1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: train.lr=-1 is not allowed: a finite number > 0"
    ]


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.hidden=[1000000,1000000]", "model.hidden"),  # 10**12 weights
        ("data.n_samples=10000000000", "data.n_samples"),
    ],
)
def test_a_run_too_big_for_the_memory_is_refused_naming_its_setting(
    tmp_path, monkeypatch, override, key
):
    monkeypatch.setattr(autodiff_train, "memory_available", lambda: 10**9)
    with pytest.raises(ConfigError) as error:
        train(make_cfg(tmp_path, override))
    message = str(error.value)
    assert error.value.key == key and "a run that fits in memory: this one needs about " in message
    assert message.endswith(", 1.0 GB available") and not (tmp_path / "metrics.json").exists()
    for experiment in ("underfit", "overfit", "goodfit"):  # the studies fit in far less
        check_config(make_cfg(tmp_path, f"experiment={experiment}"))


def test_the_size_defaults_are_the_configs():
    conf = OmegaConf.load(CONF / "train.yaml")
    assert {
        "data.n_samples": conf.data.n_samples,
        "model.hidden": list(conf.model.hidden),
    } == SIZE_DEFAULTS


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "metrics"
    a_file.write_text("")
    with pytest.raises(ConfigError) as error:
        train(make_cfg(a_file, "train.epochs=1"))
    assert str(error.value) == (
        f"output_dir='{a_file}' is not allowed: a folder that can be made "
        f"({a_file} is a file, not a folder)"
    )
