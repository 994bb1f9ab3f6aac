"""Aggregation of a sweep folder made here (no training): results.csv, statuses, bad input."""

from __future__ import annotations

import csv
import gc
import itertools
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from src.report.results import (
    RESULT_KEYS,
    RESULTS_FILE,
    SweepError,
    collect,
    swept_keys,
    write_results,
)
from src.run.nets import MLP

DATA = {
    "name": "xor",
    "n_train": 60,
    "n_val": 30,
    "n_test": 30,
    "noise": 0.1,
    "batch_size": 16,
    "seed": 42,
}


def job_record(
    status: str = "ok",
    loss: float = 0.1,
    epochs: int = 4,
    config: dict | None = None,
    n_params: int = 3,
) -> dict:
    """A finished job's metrics.json as src.train writes it: fake losses falling from `loss`
    times 2.2 to about `loss` (NaN in the last epoch when diverged)."""
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
    if status == "diverged":
        history[-1]["val_loss"] = history[-1]["train_loss"] = math.nan
    final = history[-1]
    return {
        "status": status,
        **{k: final[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
        "test_loss": final["val_loss"],
        "test_accuracy": 0.8,
        "best_val_loss": history[0]["val_loss"],
        "best_epoch": 0,
        "epochs": epochs,
        "n_params": n_params,
        "seconds": 1.5,
        "history": history,
        "config": config or {"seed": 0, "model": {"depth": 1, "width": 2}, "data": DATA},
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
        net = MLP(depth, width)
        hparams = {
            "depth": depth,
            "width": width,
            "activation": "tanh",
            "lr": 0.01,
            "optimizer": "adam",
            "in_features": 2,
        }
        torch.save({"hparams": hparams, "state_dict": net.state_dict()}, job / "model.pt")
        n_params = sum(p.numel() for p in net.parameters())
        config = {"seed": seed, "model": hparams, "data": data}
        record = job_record(kind, loss, epochs, config, n_params)
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


def test_a_row_leads_to_its_wandb_run(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", depths=(2,), widths=(10,), seeds=(0,))
    (record_file,) = sweep.glob("*/seed=0/metrics.json")
    run = "offline-run-20260101_000000-depth=2-seed=0-abcdefgh"
    record = {**json.loads(record_file.read_text()), "wandb_id": "depth=2-seed=0-abcdefgh"}
    record["wandb_dir"] = f"../../wandb/{run}"  # relative to the record's folder
    record_file.write_text(json.dumps(record))
    path = write_results(sweep, collect(sweep))
    with path.open() as f:
        (row,) = csv.DictReader(f)
    assert row["wandb_id"] == "depth=2-seed=0-abcdefgh" and row["wandb_dir"] == f"wandb/{run}"


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


def test_an_unreadable_metrics_file_counts_as_failed_with_the_reason(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", depths=(0,), widths=(1,), seeds=(0, 1))
    job = sweep / "logger=none,model.depth=0,model.width=1" / "seed=1"
    (job / "metrics.json").write_text('{"status": "ok", "val_lo')  # cut short in a copy
    rows = collect(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["error"] is None and "not valid JSON" in rows[1]["error"]


def _without(key: str):
    return lambda r: json.dumps({k: v for k, v in r.items() if k != key})


def _with(**changes):
    return lambda r: json.dumps({**r, **changes})


# Every way a job's metrics.json can be malformed: (its text, from a valid record; the reason).
MALFORMED = {
    "cut short": (lambda r: json.dumps(r)[:50], "not valid JSON"),
    "empty": (lambda r: "", "not valid JSON"),
    "not utf-8": (lambda r: b"\xff\xfe{}", "cannot be read"),
    "a list": (lambda r: json.dumps([r]), "holds a JSON list, not an object"),
    "a number": (lambda r: "0.5", "holds a JSON float, not an object"),
    "no status": (_without("status"), "has no status"),
    "unknown status": (_with(status="done"), "has status 'done', not one of ok, diverged"),
    "ok without metrics": (lambda r: json.dumps({"status": "ok"}), "is ok but has no train_loss"),
    "ok without val_loss": (_without("val_loss"), "is ok but has no val_loss"),
    "a string value": (_with(val_loss="0.1"), "has val_loss='0.1', not a number"),
    "a null value": (_with(test_accuracy=None), "has test_accuracy=None, not a number"),
    "a boolean value": (_with(n_params=True), "has n_params=True, not a number"),
    "ok with a NaN loss": (_with(val_loss=math.nan), "is ok but has val_loss=nan"),
    "history not a list": (_with(history={"epoch": 0}), "has history={'epoch': 0}, not a list"),
    "history empty": (_with(history=[]), "has history=[], not a list of epochs"),
    "an epoch without its loss": (_with(history=[{"epoch": 0}]), "has history[0]={'epoch': 0}"),
    "no config": (_without("config"), "has no config.data"),
    "diverged with a string": (_with(status="diverged", seconds="1s"), "has seconds='1s'"),
}


def write_malformed(job: Path, kind: str) -> str:
    """Overwrite the job's metrics.json the way `kind` names; return the expected reason."""
    text, reason = MALFORMED[kind]
    content = text(json.loads((job / "metrics.json").read_text()))
    path = job / "metrics.json"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return reason


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_metrics_file_is_a_failed_job_with_the_reason(tmp_path, kind, caplog):
    from omegaconf import OmegaConf

    from src.run.files import read_metrics
    from src.sweep.jobs import finished_metrics
    from src.sweep.summary import SweepSummary

    sweep = make_sweep(tmp_path / "sweep", depths=(0,), widths=(1,), seeds=(0, 1))
    good, bad = (sweep / "logger=none,model.depth=0,model.width=1" / f"seed={s}" for s in (0, 1))
    reason = write_malformed(bad, kind)
    record = read_metrics(bad)
    assert record["status"] == "failed" and reason in record["error"]
    assert record["error"].startswith("malformed metrics.json: it ")
    assert read_metrics(good)["status"] == "ok"  # the valid record passes the same check
    # In results.csv: failed, with the reason, no metrics.
    rows = collect(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert reason in rows[1]["error"] and rows[1]["val_loss"] is None
    # On resume the job is not finished: it is trained again.
    assert finished_metrics(bad) is None and finished_metrics(good) is not None
    # The sweep's summary names it and exits 1, as for any failed job.
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    with caplog.at_level("INFO"), pytest.raises(SystemExit) as exit_:
        SweepSummary().on_multirun_end(config)
    gc.unfreeze()  # what the summary froze for the process's exit
    assert exit_.value.code == 1
    assert "1 failed, 1 ok" in caplog.text and reason in caplog.text


def _in_epoch(i: int, change):
    """A record whose history[i] is `change(history[i])` (None: the epoch removed from it)."""

    def text(r):
        history = [dict(e) for e in r["history"]]
        history[i] = change(history[i])
        return json.dumps({**r, "history": history})

    return text


# A record valid but for one later epoch: every epoch is checked, not only the first.
LATER_EPOCH = {
    "no epoch number": lambda e: {k: v for k, v in e.items() if k != "epoch"},
    "no train_loss": lambda e: {k: v for k, v in e.items() if k != "train_loss"},
    "train_loss not a number": lambda e: {**e, "train_loss": [0.1]},
    "train_loss null": lambda e: {**e, "train_loss": None},
    "val_loss a string": lambda e: {**e, "val_loss": "0.1"},
    "val_loss a boolean": lambda e: {**e, "val_loss": True},
    "epoch a string": lambda e: {**e, "epoch": "2"},
    "not a dict: a number": lambda e: 0.5,
    "not a dict: a list": lambda e: list(e.values()),
    "not a dict: null": lambda e: None,
}


@pytest.mark.parametrize("kind", LATER_EPOCH)
def test_every_epoch_of_the_history_is_checked(tmp_path, kind):
    from src.run.files import read_metrics

    sweep = make_sweep(tmp_path / "sweep", depths=(0,), widths=(1,), seeds=(0, 1), epochs=4)
    good, bad = (sweep / "logger=none,model.depth=0,model.width=1" / f"seed={s}" for s in (0, 1))
    record = json.loads((bad / "metrics.json").read_text())
    (bad / "metrics.json").write_text(_in_epoch(2, LATER_EPOCH[kind])(record))
    assert json.loads((bad / "metrics.json").read_text())["history"][:2] == record["history"][:2]
    failed = read_metrics(bad)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("malformed metrics.json: it has history[2]="), failed
    assert "history[0]" not in failed["error"] and "history[1]" not in failed["error"]
    assert read_metrics(good)["status"] == "ok"
    rows = collect(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "history[2]" in rows[1]["error"] and rows[1]["val_loss"] is None


# Job folders whose configuration is unknown: (what is done to the job's .hydra/; the reason).
UNKNOWN_OVERRIDES = {
    "no .hydra": (lambda hydra: shutil.rmtree(hydra), "no .hydra/overrides.yaml"),
    "no overrides.yaml": (
        lambda hydra: (hydra / "overrides.yaml").unlink(),
        "no .hydra/overrides.yaml",
    ),
    "not YAML": (
        lambda hydra: (hydra / "overrides.yaml").write_text("- a: [\n"),
        "unreadable .hydra/overrides.yaml (ParserError",
    ),
    "not a list": (
        lambda hydra: (hydra / "overrides.yaml").write_text("model.depth: 2\n"),
        "malformed .hydra/overrides.yaml: a YAML dict, no list",
    ),
    "a folder": (
        lambda hydra: ((hydra / "overrides.yaml").unlink(), (hydra / "overrides.yaml").mkdir()),
        "unreadable .hydra/overrides.yaml (IsADirectoryError",
    ),
}


@pytest.mark.parametrize("kind", UNKNOWN_OVERRIDES)
def test_a_job_folder_whose_overrides_are_unknown_is_a_failed_row(tmp_path, kind):
    from src.report.grid import main
    from src.report.layout import build

    sweep = make_sweep(tmp_path / "sweep", seeds=(0, 1))
    lost = sweep / "logger=none,model.depth=2,model.width=10" / "seed=1"
    damage, reason = UNKNOWN_OVERRIDES[kind]
    damage(lost / ".hydra")
    assert (lost / "metrics.json").exists()  # it finished, but as what configuration?
    rows = collect(sweep)
    assert len(rows) == 8
    [row] = [r for r in rows if r["job_dir"] == "logger=none,model.depth=2,model.width=10/seed=1"]
    assert row["status"] == "failed" and reason in row["error"] and row["val_loss"] is None
    assert not set(row) - set(RESULT_KEYS)  # no override columns
    with write_results(sweep, rows).open() as f:
        table = {r["job_dir"]: r for r in csv.DictReader(f)}
    assert table[row["job_dir"]]["status"] == "failed" and reason in table[row["job_dir"]]["error"]
    assert table[row["job_dir"]]["model.depth"] == ""
    # Counted, but not placed: the grid's axes hold the configurations' values only.
    report = build(sweep)
    assert (report.row.values, report.col.values) == ([0, 2], [1, 10])
    assert report.swept == ["model.depth", "model.width"] and report.tuned == []
    assert "1 of 8 jobs left out of the means (1 failed)" in report.context
    assert "fixed: logger=none" in report.context
    assert len(report.cells[1][1].ok) == 1  # depth 2, width 10: seed 0 alone
    assert main([str(sweep)]) == 0
