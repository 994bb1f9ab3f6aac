"""A real multirun in a subprocess: folder layout, every wandb run in the sweep's wandb/ folder,
failures contained."""

import csv
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.run.files import run_group, sweep_files, unique_dir

from .conftest import ROOT, TINY, wandb_inspect


def test_unique_dir_never_hands_out_the_same_folder_twice(tmp_path):
    first = unique_dir(str(tmp_path / "21-30-05"))
    second = unique_dir(str(tmp_path / "21-30-05"))
    assert first != second and Path(first).is_dir() and Path(second).is_dir()
    assert second == str(tmp_path / "21-30-05-2")


def test_run_group_is_the_configuration_without_the_seed():
    assert run_group("model.depth=3,model.width=10") == "model.depth=3,model.width=10"
    assert run_group("") == "default"


def test_sweep_files_finds_the_jobs_files_and_skips_wandb_and_report(tmp_path):
    for folder in ("a/seed=0", "a/seed=1", "b/seed=0/wandb/run", "report"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "metrics.json").write_text("{}")
    found = sorted(str(p.relative_to(tmp_path)) for p in sweep_files(tmp_path))
    assert found == ["a/seed=0/metrics.json", "a/seed=1/metrics.json"]


def test_multirun_layout_wandb_runs_and_a_failing_job(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "-m",
            "model.depth=-1,1,2",
            "model.width=2",
            "seed=0,1",
            f"hydra.sweep.dir={sweep}",
            *TINY,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # the sweep finished but says some jobs failed
    assert "6 jobs" in output and "2 failed" in output and "4 ok" in output

    def job_dir(depth: int, seed: int) -> Path:
        # <every override but the seed, sorted>/seed=<n>
        group = ",".join(sorted([*TINY, f"model.depth={depth}", "model.width=2"]))
        return sweep / group / f"seed={seed}"

    runs = {}  # every wandb run of the sweep, in <sweep>/wandb/, by its id
    for folder in (sweep / "wandb").glob("offline-run-*"):
        info = wandb_inspect(folder)  # read back by wandb's own reader
        assert folder.name.endswith(f"-{info['run_id']}") and info["exit_code"] == 0
        runs[info["run_id"]] = info
    assert not list(sweep.glob("*/seed=*/wandb"))  # none in the jobs' folders
    rows = {r["job_dir"]: r for r in csv.DictReader((sweep / "results.csv").open())}
    for depth, seed in itertools.product((1, 2), (0, 1)):
        job = job_dir(depth, seed)
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["config"]["seed"] == seed
        # The run's id reads as the swept settings and the seed; its record names it.
        run_id = metrics["wandb_id"]
        assert re.fullmatch(rf"depth={depth}-seed={seed}-[a-z2-7]{{8}}", run_id)
        folder = (job / metrics["wandb_dir"]).resolve()
        assert folder.parent == (sweep / "wandb").resolve() and folder.name.endswith(f"-{run_id}")
        row = rows[job.relative_to(sweep).as_posix()]
        assert row["wandb_id"] == run_id and row["wandb_dir"] == f"wandb/{folder.name}"
        # Group (repetitions average together), name, config and the last val_loss.
        info = runs.pop(run_id)
        group = job.parent.name
        assert info["group"] == group and info["display_name"] == f"{group}/seed={seed}"
        assert info["job_type"] == "train" and info["config"]["seed"] == seed
        assert info["config"]["model"]["depth"] == depth
        assert info["summary"]["val_loss"] == pytest.approx(metrics["val_loss"])
        assert (job / "model.pt").exists()

        bad = job_dir(-1, seed)  # refused before its run started: no run
        record = json.loads((bad / "metrics.json").read_text())
        assert record["status"] == "failed" and "model.depth" in record["error"]
    # and the report's own run, logged by a worker
    ((report_id, info),) = runs.items()
    assert re.fullmatch(r"report-[a-z2-7]{8}", report_id)
    assert info["job_type"] == "report" and info["display_name"] == f"report {sweep.name}"


def test_a_sweeps_main_process_does_not_import_torch():
    # What `python -m src.train -m` loads before its workers train (Hydra's callbacks included):
    # torch and Lightning are imported where a run trains: launching 42 jobs costs no 5 s import.
    modules = "src.train, src.sweep.preflight, src.sweep.summary, src.report.callback"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
