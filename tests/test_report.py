"""The grid report: figures from small arrays, the report of a synthetic sweep, the CLI, wandb,
and the Hydra callback at the end of one tiny real multirun."""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from src import figures
from src.callbacks import GridReport
from src.config import ConfigError
from src.report import REPORT_DIR, build, choose_axes, log_to_wandb, main, write_report
from src.results import RESULTS_FILE, collect

from .conftest import ROOT, TINY, wandb_records
from .test_results import make_sweep

PNGS = {
    "data.png",
    "heatmap_val_loss.png",
    "heatmap_val_accuracy.png",
    "boundaries.png",
    "boundaries_best_worst.png",
    "learning_curves.png",
}


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_each_figure_function_draws_a_png(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 2)), (rng.random(20) > 0.5).astype(float)
    b = figures.Boundary(rng.random((8, 8)), (-2.0, 2.0, -2.0, 2.0), x, y, "label")
    row, col = figures.Axis("model.depth", [0, 1]), figures.Axis("model.width", [1, 2, 3])
    mean = np.array([[0.5, 0.4, np.nan], [0.3, 0.2, 0.1]])
    c = figures.Curve(np.arange(3), np.ones(3), np.zeros(3), np.array([1.0, 0.5, 0.2]), np.ones(3))
    paths = [
        figures.plot_data({"train": (x, y), "val": (x, y)}, "data", tmp_path / "a.png"),
        figures.plot_heatmaps(mean, mean / 10, row, col, "val_loss", "t", tmp_path / "b.png"),
        figures.plot_boundary_grid([[b, None, b], [b, b, b]], row, col, "t", tmp_path / "c.png"),
        figures.plot_boundaries({"best": b, "worst": b}, "t", tmp_path / "d.png"),
        figures.plot_curves({"depth=0": {"w=1": c, "w=2": c}}, "width", "t", tmp_path / "e.png"),
    ]
    assert all(is_png(p) for p in paths)


def test_cli_on_a_partial_sweep_with_failed_and_diverged_jobs(tmp_path, capsys):
    status = {(2, 1, 0): "failed", (2, 1, 1): "missing", (0, 10, 1): "diverged"}
    sweep = make_sweep(tmp_path / "sweep", seeds=(0, 1, 2), status=status)
    assert main([str(sweep), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    out = sweep / REPORT_DIR
    assert str(out / "index.html") in printed
    assert "3 of 12 jobs left out of the means (1 diverged, 1 failed, 1 missing)" in printed
    assert {p.name for p in out.glob("*.png")} == PNGS
    assert all(is_png(out / name) for name in PNGS)
    with (sweep / RESULTS_FILE).open() as f:
        statuses = sorted(r["status"] for r in csv.DictReader(f))
    assert statuses == ["diverged", "failed", "missing"] + ["ok"] * 9
    page = (out / "index.html").read_text()
    assert all(f'src="{name}"' in page for name in PNGS)
    assert "3 of 12 jobs left out of the means" in page and "fixed: logger=none" in page
    # The best configuration (deepest, widest in the fake losses) leads the page.
    assert "Best configuration: <b>model.depth=2, model.width=10</b>" in page


def test_any_two_swept_keys_can_be_the_axes(tmp_path):
    sweep = tmp_path / "sweep"
    for lr in (0.1, 0.01):  # a third swept key: two sweeps' worth of job folders in one root
        make_sweep(sweep, seeds=(0,), extra=(f"model.lr={lr}",))
    results = collect(sweep)
    assert choose_axes(results, None, None) == ("model.depth", "model.width")
    assert choose_axes(results, "model.lr", None) == ("model.lr", "model.depth")
    report = build(sweep, rows="model.depth", cols="model.lr")
    assert (report.row.values, report.col.values) == ([0, 2], [0.01, 0.1])
    assert report.context == "best over model.width; all 8 jobs finished ok"
    # Each cell holds its best width: the widest, in the fake losses.
    assert all(g.config["model.width"] == 10 for line in report.cells for g in line)
    with pytest.raises(ConfigError, match="--rows='seed'"):
        choose_axes(results, "seed", None)
    with pytest.raises(ConfigError, match="--cols"):
        choose_axes(results, "model.lr", "model.lr")


@pytest.mark.parametrize(
    "case, message",
    [
        ("plain", "is not a sweep"),
        ("unstarted", "no finished jobs"),
        ("rows", "--rows='model.lr' is not allowed: a swept key: model.depth, model.width"),
        ("seed", "--seed=9 is not allowed"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_non_zero_exit(tmp_path, capsys, case, message):
    sweep = tmp_path / "sweep"
    args = {"rows": ["--rows", "model.lr"], "seed": ["--seed", "9"]}.get(case, [])
    if case == "plain":
        sweep.mkdir()
    elif case == "unstarted":
        make_sweep(
            sweep,
            status={
                k: "missing" for k in [(d, w, s) for d in (0, 2) for w in (1, 10) for s in (0, 1)]
            },
        )
    else:
        make_sweep(sweep)
    assert main([str(sweep), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_workers_draw_the_same_report(tmp_path):
    from joblib import Parallel

    here, there = make_sweep(tmp_path / "here"), make_sweep(tmp_path / "there")
    write_report(here)
    write_report(there, workers=Parallel(n_jobs=2, backend="loky"))
    page = (here / REPORT_DIR / "index.html").read_text()
    assert (there / REPORT_DIR / "index.html").read_text() == page.replace("here", "there")
    assert all(is_png(there / REPORT_DIR / name) for name in PNGS)


def test_callback_logs_a_report_error_and_goes_on(tmp_path, caplog):
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")  # a sweep with no job yet
    config = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path)}}, "logger": {"kind": "none"}}
    )
    with caplog.at_level(logging.ERROR):
        GridReport().on_multirun_end(config)
    assert "report not written: SweepError" in caplog.text
    assert (tmp_path / RESULTS_FILE).exists()


def test_report_is_logged_as_one_offline_wandb_run(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    write_report(sweep)
    logger = OmegaConf.create({"kind": "wandb", "project": "p", "entity": None, "mode": "offline"})
    log_to_wandb(sweep, logger)
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    images = {p.name.split("_0_")[0] for p in (runs[0] / "files" / "media" / "images").iterdir()}
    assert images == {name.removesuffix(".png") for name in PNGS}
    assert list((runs[0] / "files" / "media" / "table").glob("results*.table.json"))
    assert b"report" in wandb_records(sweep / "wandb")[0]  # the job_type


def test_a_multirun_ends_with_results_and_report_before_the_summary(tmp_path):
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "-m",
            "model.depth=-1,1",
            "model.width=2,3",
            "seed=0,1",
            "logger=none",
            "hydra/launcher=basic",  # one process: no worker start-up to wait for
            f"hydra.sweep.dir={sweep}",
            *TINY,
        ],
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, (
        output
    )  # the 4 jobs of depth -1 were refused: the summary still says so
    assert output.index("report: ") < output.index(f"8 jobs in {sweep}"), output
    with (sweep / RESULTS_FILE).open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and sum(r["status"] == "failed" for r in rows) == 4
    assert {p.name for p in (sweep / REPORT_DIR).glob("*.png")} == PNGS
