"""Aggregation of a sweep folder made here (no training): results.csv, statuses, bad input."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from src.nets import build_mlp
from src.results import RESULTS_FILE, SweepError, collect, swept_keys, write_results

DATA = {
    "name": "xor",
    "n_train": 60,
    "n_val": 30,
    "n_test": 30,
    "noise": 0.1,
    "batch_size": 16,
    "seed": 42,
}


def make_sweep(
    root: Path,
    depths=(0, 2),
    widths=(1, 10),
    seeds=(0, 1),
    status: dict | None = None,
    epochs: int = 4,
    data: dict | None = None,
    extra: tuple[str, ...] = ("logger=none",),
) -> Path:
    """A sweep folder laid out as Hydra writes it, with fake metrics and real small models.

    status: {(depth, width, seed): "failed" | "diverged" | "missing"}; the others are "ok".
    """
    status = status or {}
    data = data or DATA
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for depth, width, seed in itertools.product(depths, widths, seeds):
        overrides = [f"model.depth={depth}", f"model.width={width}", f"seed={seed}", *extra]
        group = ",".join(sorted(o for o in overrides if not o.startswith("seed=")))
        job = root / group / f"seed={seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        kind = status.get((depth, width, seed), "ok")
        if kind == "missing":
            continue
        if kind == "failed":
            record = {"status": "failed", "error": "model.depth=-1 is not allowed"}
            (job / "metrics.json").write_text(json.dumps(record))
            continue
        loss = 0.7 / (1 + depth + width / 10) + 0.01 * seed
        history = [
            {
                "epoch": e,
                "train_loss": loss * (1 + 1 / (e + 1)),
                "train_accuracy": 0.8,
                "val_loss": loss * (1 + 1.2 / (e + 1)),
                "val_accuracy": 0.8,
            }
            for e in range(epochs)
        ]
        if kind == "diverged":
            history[-1]["val_loss"] = history[-1]["train_loss"] = math.nan
        final = history[-1]
        net = build_mlp(depth, width)
        hparams = {
            "depth": depth,
            "width": width,
            "activation": "tanh",
            "lr": 0.01,
            "optimizer": "adam",
            "in_features": 2,
        }
        torch.save({"hparams": hparams, "state_dict": net.state_dict()}, job / "model.pt")
        config = {"seed": seed, "model": hparams, "data": data}
        record = {
            "status": kind,
            **{k: final[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
            "test_loss": final["val_loss"],
            "test_accuracy": 0.8,
            "best_val_loss": history[0]["val_loss"],
            "best_epoch": 0,
            "epochs": epochs,
            "n_params": sum(p.numel() for p in net.parameters()),
            "seconds": 1.5,
            "history": history,
            "config": config,
        }
        (job / "metrics.json").write_text(json.dumps(record))
    return root


def test_collect_one_row_per_job_with_overrides_status_and_metrics(tmp_path):
    sweep = make_sweep(
        tmp_path / "sweep",
        status={(2, 1, 0): "failed", (2, 1, 1): "missing", (0, 10, 1): "diverged"},
    )
    rows = collect(sweep)
    assert len(rows) == 8
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["diverged", "failed", "missing"] + ["ok"] * 5
    first = rows[0]
    assert list(first)[:4] == ["model.depth", "model.width", "seed", "logger"]
    assert (first["model.depth"], first["model.width"], first["seed"]) == (0, 1, 0)
    assert first["job_dir"] == "logger=none,model.depth=0,model.width=1/seed=0"
    assert first["val_loss"] > 0 and first["n_params"] == 3 and first["epochs"] == 4
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["val_loss"] is None and failed["model.depth"] == 2
    assert swept_keys(rows) == ["model.depth", "model.width"]


def test_rows_sort_numerically_and_values_parse_like_hydra(tmp_path):
    sweep = make_sweep(
        tmp_path / "s",
        depths=(2, 10),
        widths=(3,),
        seeds=(0,),
        extra=("model.lr=1e-3", "model.activation=relu"),
    )
    rows = collect(sweep)
    assert [r["model.depth"] for r in rows] == [2, 10]  # not "10" before "2"
    assert rows[0]["model.lr"] == 0.001 and rows[0]["model.activation"] == "relu"
    assert swept_keys(rows) == ["model.depth"]


def test_results_csv_has_every_job_and_column(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", status={(2, 10, 1): "failed"})
    path = write_results(sweep, collect(sweep))
    assert path == sweep / RESULTS_FILE
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8
    for key in (
        "model.depth",
        "model.width",
        "seed",
        "status",
        "val_loss",
        "best_val_loss",
        "seconds",
        "job_dir",
    ):
        assert key in table[0]
    failed = [r for r in table if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["val_loss"] == "" and failed[0]["model.width"] == "10"


def test_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(SweepError, match="not a sweep"):
        collect(tmp_path / "plain")
    with pytest.raises(SweepError, match="not a folder"):
        collect(tmp_path / "nowhere")
    # A single run's folder has .hydra/ itself but no job folders.
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    with pytest.raises(SweepError):
        collect(tmp_path / "run")


def test_a_sweep_that_has_not_started_any_job_has_no_rows(tmp_path):
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    assert collect(tmp_path) == []


def test_an_unreadable_metrics_file_counts_as_missing(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", depths=(0,), widths=(1,), seeds=(0, 1))
    job = sweep / "logger=none,model.depth=0,model.width=1" / "seed=1"
    (job / "metrics.json").write_text('{"status": "ok", "val_lo')  # cut short in a copy
    assert [r["status"] for r in collect(sweep)] == ["ok", "missing"]
