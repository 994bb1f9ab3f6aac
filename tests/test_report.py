"""The grid report: figures from small arrays, the report of a synthetic sweep, the CLI, wandb,
and the Hydra callback at the end of one tiny real multirun."""

from __future__ import annotations

import csv
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.report import figures
from src.report.callback import GridReport
from src.report.grid import REPORT_DIR, log_to_wandb, main, write_report
from src.report.layout import build, choose_axes
from src.report.page import sweep_name
from src.report.results import RESULTS_FILE, collect
from src.sweep.runs import report_run

from .conftest import ROOT, TINY, wandb_history, wandb_records, wandb_run_info
from .test_results import MALFORMED, make_sweep, write_malformed

PNGS = {
    "data.png",
    "heatmap_val_loss.png",
    "heatmap_val_accuracy.png",
    "boundaries.png",
    "boundaries_best_worst.png",
    "learning_curves.png",
    "params.png",
}  # and gradient_norms.png where the runs have gradient norms (make_sweep's fake ones have none)


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_each_figure_function_draws_a_png(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 2)), (rng.random(20) > 0.5).astype(float)
    b = figures.Boundary(rng.random((8, 8)), (-2.0, 2.0, -2.0, 2.0), x, y, "label")
    row, col = figures.Axis("model.depth", [0, 1]), figures.Axis("model.width", [1, 2, 3])
    mean = np.array([[0.5, 0.4, np.nan], [0.3, 0.2, 0.1]])
    lo, avg, hi = np.array([0.5, 0.1, 0.01]), np.array([1.0, 0.5, 0.2]), np.array([2.0, 1, 0.5])
    c = figures.Curve(np.arange(3), avg, lo, hi, avg / 2, lo / 2, hi / 2)
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
    # Its runs are not the report's problem (other data sizes): every claim untested, said once.
    assert page.index("Claims: the course report") < page.index("Best configuration")
    assert "claims: none tested by this sweep" in printed and (sweep / "claims.csv").is_file()


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
        ("unstarted", "no job finished ok, nothing to draw (8 missing)"),
        ("diverged", "no job finished ok, nothing to draw (8 diverged)"),
        ("rows", "--rows='model.lr' is not allowed: a swept key: model.depth, model.width"),
        ("seed", "--seed=9 is not allowed"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_non_zero_exit(tmp_path, capsys, case, message):
    sweep = tmp_path / "sweep"
    args = {"rows": ["--rows", "model.lr"], "seed": ["--seed", "9"]}.get(case, [])
    if case == "plain":
        sweep.mkdir()
    elif case in ("unstarted", "diverged"):
        every = [(d, w, s) for d in (0, 2) for w in (1, 10) for s in (0, 1)]
        make_sweep(sweep, status=dict.fromkeys(every, "missing" if case == "unstarted" else case))
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
    sweeper = {"_target_": "hydra_plugins.stacked_sweepers.grid_sweeper.SeedStackingSweeper"}
    config = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": sweeper}, "logger": {"kind": "none"}}
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
    log_to_wandb(sweep, logger)  # a resumed sweep's report replaces the one before
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(f"-{report_run(sweep).id}")
    images = {p.name.split("_0_")[0] for p in (runs[0] / "files" / "media" / "images").iterdir()}
    assert images == {name.removesuffix(".png") for name in PNGS}
    assert list((runs[0] / "files" / "media" / "table").glob("results*.table.json"))
    [record_file] = wandb_records(sweep / "wandb")
    info = wandb_run_info(record_file)
    assert info["job_type"] == "report" and info["display_name"] == "report sweep"
    assert info["group"] == ""  # not one of the training runs' groups
    [row] = wandb_history(record_file)  # one log call: the table and every figure
    logged = {k.split("/")[0] for k in row if not k.startswith("_")}
    assert logged == {"results"} | {name.removesuffix(".png") for name in PNGS}


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
    assert {p.name for p in (sweep / REPORT_DIR).glob("*.png")} == PNGS | {"gradient_norms.png"}


def test_a_report_names_its_sweep_without_an_absolute_path(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path / "multirun" / "2026-11-26" / "21-30-05", seeds=(0,))
    monkeypatch.chdir(tmp_path)
    assert sweep_name(sweep) == sweep_name("multirun/2026-11-26/21-30-05")
    assert sweep_name(sweep) == "multirun/2026-11-26/21-30-05"
    monkeypatch.chdir(sweep)
    assert sweep_name(sweep) == "21-30-05"  # the folder itself
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert sweep_name(sweep) == "21-30-05"  # not under the current folder: its own name

    titles = []  # every string the views hand to the figures

    def recording(plot):
        def wrapper(*args, **kwargs):
            titles.extend(a for a in (*args, *kwargs.values()) if isinstance(a, str))
            return plot(*args, **kwargs)

        return wrapper

    for name in (
        "plot_data",
        "plot_heatmaps",
        "plot_boundary_grid",
        "plot_boundaries",
        "plot_curves",
        "plot_params",
    ):
        monkeypatch.setattr(figures, name, recording(getattr(figures, name)))
    monkeypatch.chdir(tmp_path)
    write_report(sweep)
    page = (sweep / REPORT_DIR / "index.html").read_text()
    assert "<h1>Grid report: multirun/2026-11-26/21-30-05</h1>" in page
    assert len(titles) >= 5 and "learning curves" in " ".join(titles)
    for text in [page, *titles]:
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text


def test_learning_curve_bands_suit_a_log_axis():
    from src.report.views import curve

    # Seeds that spread over decades, as at depth 2-5 with width 3: mean - std < 0 there.
    finals = [0.0001, 0.0003, 0.69]
    histories = [
        [{"epoch": e, "train_loss": f * (3 - e), "val_loss": f * (4 - e)} for e in range(3)]
        for f in finals
    ]
    histories[0] = histories[0][:2]  # a run that stopped early counts until it stops
    c = curve(histories)
    val = np.array([[r["val_loss"] for r in h] + [np.nan] * (3 - len(h)) for h in histories])
    assert np.nanmean(val, axis=0) - np.nanstd(val, axis=0, ddof=1) == pytest.approx(
        c.val_mean - np.nanstd(val, axis=0, ddof=1)
    )
    assert (c.val_mean - np.nanstd(val, axis=0, ddof=1) < 0).all()  # what fell off the axis
    for lo, mean, hi, key in (
        (c.val_lo, c.val_mean, c.val_hi, "val_loss"),
        (c.train_lo, c.train_mean, c.train_hi, "train_loss"),
    ):
        assert (lo > 0).all() and (lo <= mean).all() and (mean <= hi).all()
        for h in histories:  # every run lies in its band
            runs = np.array([r[key] for r in h])
            assert (lo[: len(h)] <= runs).all() and (runs <= hi[: len(h)]).all()
    assert c.val_lo[2] == pytest.approx(0.0003 * 2)  # the early stopper is out of epoch 2
    assert c.val_hi.tolist() == pytest.approx([0.69 * 4, 0.69 * 3, 0.69 * 2])


def test_malformed_job_records_do_not_take_the_report_down(tmp_path, capsys):
    # One job per kind of malformed metrics.json; seed 0 of every configuration stays ok.
    seeds = range(6)
    sweep = make_sweep(tmp_path / "sweep", seeds=seeds)
    slots = [(d, w, s) for s in seeds[1:] for d in (0, 2) for w in (1, 10)]
    reasons = {}
    for (d, w, s), kind in zip(slots, MALFORMED):
        job = sweep / f"logger=none,model.depth={d},model.width={w}" / f"seed={s}"
        reasons[f"{job.parent.name}/seed={s}"] = write_malformed(job, kind)
    assert len(reasons) == len(MALFORMED) and len(MALFORMED) <= len(slots)

    assert main([str(sweep)]) == 0
    n, bad = 4 * len(seeds), len(MALFORMED)
    assert f"{bad} of {n} jobs left out of the means ({bad} failed)" in capsys.readouterr().out
    with (sweep / RESULTS_FILE).open() as f:
        rows = {r["job_dir"]: r for r in csv.DictReader(f)}
    for job_dir, reason in reasons.items():
        assert rows[job_dir]["status"] == "failed" and reason in rows[job_dir]["error"]
        assert rows[job_dir]["val_loss"] == ""
    assert all(r["error"] == "" for j, r in rows.items() if j not in reasons)
    out = sweep / REPORT_DIR
    assert all(is_png(out / name) for name in PNGS)
    assert f"{bad} of {n} jobs left out of the means" in (out / "index.html").read_text()
    # The means are those of the valid runs only.
    report = build(sweep)
    best = report.ranked[0]
    assert len(best.ok) == sum(1 for r in best.runs if r["job_dir"] not in reasons)


def test_an_unreadable_model_leaves_its_boundary_blank_and_the_report_whole(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path / "sweep")
    jobs = {
        (d, w): sweep / f"logger=none,model.depth={d},model.width={w}" / "seed=0"
        for d, w in [(0, 10), (2, 10)]
    }
    (jobs[0, 10] / "model.pt").unlink()  # missing
    (jobs[2, 10] / "model.pt").write_bytes(b"cut sh")  # corrupt, and the best configuration's
    grid, big = [], []
    for name, calls in (("plot_boundary_grid", grid), ("plot_boundaries", big)):
        plot = getattr(figures, name)
        monkeypatch.setattr(
            figures, name, lambda *a, plot=plot, calls=calls: calls.append(a) or plot(*a)
        )

    assert main([str(sweep)]) == 0
    out = sweep / REPORT_DIR
    assert all(is_png(out / name) for name in PNGS)
    [(cells, _, _, title, _)] = grid
    blank = [cell is None for line in cells for cell in line]
    assert sum(blank) == 2 and len(blank) == 4
    assert "2 unreadable model.pt (missing or corrupt), blank" in title
    [(boundaries, title, _)] = big
    assert list(boundaries) == ["worst"] and "the best's model.pt is unreadable" in title


FULL = Path("/dev/full")  # every write to it fails as on a full disk: ENOSPC


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "written", [RESULTS_FILE, f"{REPORT_DIR}/heatmap_val_loss.png", f"{REPORT_DIR}/index.html"]
)
def test_a_full_disk_ends_the_report_with_one_line(tmp_path, capsys, written):
    # A real ENOSPC: the file written is /dev/full (for results.csv, the file it is written
    # to first, then renamed). A failed write names no file: the line must name it.
    sweep = make_sweep(tmp_path / "sweep", seeds=(0,))
    path = sweep / written
    path.parent.mkdir(exist_ok=True)
    (path.with_name(f".{path.name}.tmp") if written == RESULTS_FILE else path).symlink_to(FULL)
    assert main([str(sweep)]) == 2
    out, err = capsys.readouterr()
    assert err == f"error: {path}: No space left on device (ENOSPC); the report is not complete\n"
    assert "report: " not in out


def test_a_read_only_sweep_ends_the_cli_with_one_line_and_no_traceback(tmp_path, monkeypatch):
    # Read-only as the OS says it (EROFS, naming the file), raised from results.csv's rename
    # in the command's own process: root ignores a chmod, so the failure is planted.
    sweep = make_sweep(tmp_path / "sweep", seeds=(0,))
    plant = tmp_path / "plant"
    (plant / "sitecustomize.py").parent.mkdir()
    (plant / "sitecustomize.py").write_text(
        "import errno, os\n"
        "def replace(src, dst, replace=os.replace):\n"
        "    if str(dst).endswith('results.csv'):\n"
        "        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(src), None, str(dst))\n"
        "    return replace(src, dst)\n"
        "os.replace = replace\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{plant}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "src.report", str(sweep)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: {sweep / RESULTS_FILE}: Read-only file system (EROFS); "
        "the report is not complete\n"
    )
    assert not (sweep / RESULTS_FILE).exists() and not (sweep / REPORT_DIR).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_folder_without_write_permission_ends_the_report_with_one_line(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep", seeds=(0,))
    sweep.chmod(0o555)
    try:
        assert main([str(sweep)]) == 2
    finally:
        sweep.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {sweep / RESULTS_FILE}: ")
    assert "Permission denied (EACCES)" in err


def test_the_table_prints_significant_digits(tmp_path):
    # A good grid's losses: 1e-4 and below, spread by 1e-6 across seeds.
    sweep = make_sweep(tmp_path / "sweep", seeds=(0, 1, 2))
    losses = {}
    for path in sweep.rglob("metrics.json"):
        record = json.loads(path.read_text())
        depth, width = record["config"]["model"]["depth"], record["config"]["model"]["width"]
        seed = record["config"]["seed"]
        loss = 1e-4 / (1 + depth + width) + 1e-6 * seed
        losses.setdefault((depth, width), {})[seed] = loss
        path.write_text(json.dumps({**record, "val_loss": loss}))
    lonely = sweep / "logger=none,model.depth=0,model.width=1"
    for seed in (1, 2):  # depth 0, width 1: one seed left, no std
        (lonely / f"seed={seed}" / "metrics.json").unlink()
        del losses[0, 1][seed]
    page = (write_report(sweep) / "index.html").read_text()
    assert "0.0000" not in page and "0.0001 ± " not in page
    for (depth, width), by_seed in losses.items():
        xs = list(by_seed.values())
        std = f"{statistics.stdev(xs):.2g}" if len(xs) > 1 else "n/a"
        assert f"<td>{statistics.fmean(xs):.3g} ± {std}</td>" in page, (depth, width)
    best = min(losses, key=lambda k: statistics.fmean(losses[k].values()))
    assert f"val_loss {statistics.fmean(losses[best].values()):.3g} ± " in page
    assert "<td>5e-05 ± n/a</td>" in page  # 1e-4 / 2, seed 0 alone
    assert "<td>1.01e-05 ± 1e-06</td>" in page  # depth 0, width 10: 1e-4 / 11 + 0, 1, 2e-6
