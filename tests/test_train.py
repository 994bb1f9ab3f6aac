"""In-process training runs: what a job writes, determinism, divergence, loggers."""

import json
import math

import pytest
import torch

from src.run.nets import MLP
from src.run.training import train

from .conftest import wandb_history, wandb_records, wandb_run_info

KEYS = {
    "status",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "best_val_loss",
    "best_epoch",
    "epochs",
    "n_params",
    "seconds",
    "history",
    "config",
    "stacked_with",
    "dead_units",
    "dead_units_by_layer",
}


def test_a_run_writes_metrics_and_weights(make_cfg, tmp_path):
    metrics = train(make_cfg("model.depth=2", "model.width=4"))
    out = tmp_path / "run"
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) == KEYS and saved["status"] == "ok"
    assert saved["epochs"] == len(saved["history"]) == 2
    assert len(saved["dead_units_by_layer"]) == 2 and 0 <= saved["dead_units"] <= 1
    assert [r["epoch"] for r in saved["history"]] == [0, 1]
    assert saved["val_loss"] == saved["history"][-1]["val_loss"] == metrics["val_loss"]
    assert saved["best_val_loss"] == min(r["val_loss"] for r in saved["history"])
    assert saved["n_params"] == 3 * 4 + 5 * 4 + 5
    for key in ("train_loss", "val_loss", "test_loss"):
        assert 0 < saved[key] < 5
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert 0 <= saved[key] <= 1

    checkpoint = torch.load(out / "model.pt")
    net = MLP(checkpoint["hparams"]["depth"], checkpoint["hparams"]["width"])
    net.load_state_dict(checkpoint["state_dict"])


def test_logged_loss_is_the_loss_of_the_saved_model(make_cfg, tmp_path):
    train(make_cfg("model.depth=1", "model.width=3"))
    from src.run.data import GeneratedDataModule

    cfg = make_cfg()
    dm = GeneratedDataModule(**cfg.data)
    dm.setup()
    checkpoint = torch.load(tmp_path / "run" / "model.pt")
    net = MLP(1, 3)
    net.load_state_dict(checkpoint["state_dict"])
    x, y = dm.splits["test"].tensors
    with torch.no_grad():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).squeeze(-1), y)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert math.isclose(saved["test_loss"], float(loss), rel_tol=1e-5)


def test_same_config_and_seed_give_identical_numbers(make_cfg):
    a = train(make_cfg("seed=0"))
    b = train(make_cfg("seed=0"))
    c = train(make_cfg("seed=1"))
    for m in (a, b, c):
        m.pop("seconds")
    assert a == b
    assert a["history"] != c["history"]


def test_a_good_setting_learns_xor(make_cfg):
    metrics = train(
        make_cfg("trainer.max_epochs=25", "model.depth=2", "model.width=10", tiny=False)
    )
    assert metrics["val_accuracy"] > 0.97 and metrics["val_loss"] < 0.1


def test_divergence_stops_the_run_and_is_recorded(make_cfg):
    metrics = train(make_cfg("model.optimizer=sgd", "model.lr=1e38", "trainer.max_epochs=5"))
    assert metrics["status"] == "diverged"
    assert metrics["epochs"] < 5
    assert not math.isfinite(metrics["history"][-1]["train_loss"])


def test_csv_logger_writes_the_epoch_metrics(make_cfg, tmp_path):
    train(make_cfg("logger=csv"))
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "epoch"} <= set(header)


def test_wandb_offline_run_lives_in_the_job_folder(make_cfg, tmp_path, monkeypatch):
    import wandb
    from wandb.sdk import wandb_setup

    monkeypatch.delenv("WANDB_MODE")  # offline from logger.mode, as for most users

    for job in ("a", "b"):  # two jobs in one process, as in a multirun
        overrides = ("logger=wandb", "logger.watch=true", "data.batch_size=8")  # 16 steps
        train(make_cfg(*overrides, f"output_dir={tmp_path / job}"))
        assert wandb.run is None  # finished, so the next job starts a run of its own
    # Offline for the whole process, not only for the run: wandb then starts none of the
    # telemetry threads that report to wandb.ai at exit.
    assert wandb_setup.singleton().settings.mode == "offline"
    for job in ("a", "b"):
        records = wandb_records(tmp_path / job / "wandb")
        assert len(records) == 1  # one run per job, inside the job's folder
        info = wandb_run_info(records[0])
        metrics = json.loads((tmp_path / job / "metrics.json").read_text())
        (folder,) = (tmp_path / job / "wandb").glob("offline-run-*")
        assert metrics["wandb_id"] == info["run_id"] and folder.name.endswith(info["run_id"])
        assert metrics["wandb_dir"] == f"wandb/{folder.name}"  # relative to the run's folder
        assert info["exit_code"] == 0
        assert info["job_type"] == "train"  # conf/logger/wandb.yaml's
        # Outside a sweep the group is "default"; the name, the group and the seed.
        assert info["group"] == "default" and info["display_name"] == "default/seed=0"
        assert info["config"]["output_dir"] == str(tmp_path / job)
        # watched under the same names in every job, so that runs line up in wandb
        assert watched(records[0]) == {
            f"{kind}/net.layers.{i}.{p}"
            for kind in ("gradients", "parameters")
            for i in range(3)
            for p in ("weight", "bias")
        }


def watched(record_file: bytes) -> set[str]:
    """The histograms wandb.watch logged in a run (gradients/<name>, parameters/<name>)."""
    rows = wandb_history(record_file)
    return {k.removesuffix("/_type") for row in rows for k in row if k.endswith("/_type")}


def test_wandb_gets_one_row_per_epoch_then_the_test_row(make_cfg, tmp_path):
    # The model sends each epoch's training and validation metrics as one wandb row, and the
    # test metrics in a row of their own.
    train(make_cfg("logger=wandb", "trainer.max_epochs=3", f"output_dir={tmp_path / 'job'}"))
    [record_file] = wandb_records(tmp_path / "job" / "wandb")
    info = wandb_run_info(record_file)
    assert (info["job_type"], info["group"], info["display_name"]) == (
        "train",
        "default",
        "default/seed=0",
    )
    assert info["config"]["trainer"]["max_epochs"] == 3 and info["config"]["n_params"] > 0
    assert watched(record_file) == set()  # logger.watch is off by default
    rows = wandb_history(record_file)
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    epoch_keys = {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    for row, record in zip(rows, metrics["history"]):
        assert {key: row[key] for key in epoch_keys} == pytest.approx(
            {key: record[key] for key in epoch_keys}
        )
    assert set(rows[-1]) & epoch_keys == set()
    assert rows[-1]["test_loss"] == pytest.approx(metrics["test_loss"])
