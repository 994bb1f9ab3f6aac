"""Sweeps on a real one-node SLURM cluster (tests/slurm_cluster.sh; skipped where none
answers): the pool of worker tasks gives the joblib sweep's results, and what SLURM does to a
task (scancel, a time limit, a requeue) or to the main process (SIGTERM, SIGKILL) never loses
a finished job nor trains one twice at once. A job is held in its training by tests/hold.py
while SLURM acts on its task: no time window decides what has finished."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from src.report.search import load_study
from src.sweep.slurm import SLURM_DIR, cancel, folder_tasks, queued_or_running

from .conftest import ROOT, TINY
from .hold import HELD, RELEASE, hold_overrides
from .test_launchers import ENV, records, sweep_cmd, wait_for

pytestmark = pytest.mark.slurm

SLURM = ["hydra/launcher=slurm", "hydra.launcher.workers=2", "logger=none"]
GRID = ["model.depth=1", "model.width=8,9,10,11", "seed=0,1", *TINY]  # four stacks of 2 seeds


@pytest.fixture(autouse=True)
def _cancel_leftover_tasks(tmp_path):
    """A test that fails half way leaves no task holding the cluster's CPUs for the next."""
    yield
    for tasks in tmp_path.glob(f"*/{SLURM_DIR}/tasks"):
        cancel(folder_tasks(tasks.parent.parent))


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT)


def hold(signals: Path) -> list[str]:
    return hold_overrides(signals, "model.width", 10)


def results(sweep: Path) -> list[dict]:
    """results.csv without the time, which differs between two trainings of the same runs."""
    with (sweep / "results.csv").open() as f:
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    return sorted(rows, key=lambda r: r["job_dir"])


def held_task(sweep: Path, signals: Path, process: subprocess.Popen, job: str = "width=10") -> str:
    """The SLURM task running the held job (the one whose claim holds `job`), once held."""
    wait_for((signals / HELD).exists, "the job held", process)
    running = (sweep / SLURM_DIR / "running").glob("*@*.json")
    [claim] = [p for p in running if job in f"{p.name} {p.read_text()}"]
    return claim.stem.split("@", 1)[1]


def gone(sweep: Path) -> bool:
    return not queued_or_running(folder_tasks(sweep))


def test_a_grid_on_slurm_gives_the_joblib_grids_results(tmp_path):
    grid = ["model.depth=1,2", "model.width=3,5", "seed=0,1", "logger=none", *TINY]
    joblib = run(sweep_cmd(tmp_path / "joblib", *grid))
    assert joblib.returncode == 0, joblib.stderr
    assert "srun" not in joblib.stdout + joblib.stderr  # Lightning's hint, SLURM installed
    slurm = run(sweep_cmd(tmp_path / "slurm", *grid, *SLURM))
    output = slurm.stdout + slurm.stderr
    assert slurm.returncode == 0, output
    assert results(tmp_path / "slurm") == results(tmp_path / "joblib")
    assert output.count("val_loss=") == 8  # a progress line per run, in the main process
    assert "[8/8]" in output and "srun" not in output and "sacct" not in output
    assert gone(tmp_path / "slurm")  # the workers ended with the sweep


def test_a_cancelled_task_reruns_its_job_then_fails_it_with_slurms_state(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM, "logger=wandb")  # every task's runs in <sweep>/wandb
    sweep_process = start(cmd + hold(signals), log)
    try:
        for _ in range(2):  # run again on another worker, then failed (retries=1)
            task = held_task(sweep, signals, sweep_process)
            (signals / HELD).unlink()
            subprocess.run(["scancel", task], check=True)
        sweep_process.wait(timeout=300)
    finally:
        sweep_process.kill()
    output = log.read_text()
    assert sweep_process.returncode == 1 and "Traceback" not in output, output
    assert "run again on another worker" in output
    after = records(sweep)
    held = {job: m for job, m in after.items() if "model.width=10" in job}
    assert len(held) == 2 and all(m["status"] == "failed" for m in held.values())
    assert all(m["error"].startswith("SLURM: CANCELLED") for m in held.values()), held
    assert sum(m["status"] == "ok" for m in after.values()) == 6  # the others went on
    assert (sweep / "report" / "index.html").exists() and "6 ok" in output
    assert "failed" in (sweep / "results.csv").read_text()

    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "6 finished runs found there, skipped" in rerun.stdout + rerun.stderr
    after = records(sweep)
    assert sorted(m["status"] for m in after.values()) == ["ok"] * 8
    runs = [p.name.split("-", 3)[3] for p in (sweep / "wandb").glob("offline-run-*")]
    assert len(runs) == 9  # one per seed, the cut-short ones gone, and the report's
    assert {m["wandb_id"] for m in after.values()} < set(runs)


def test_a_job_past_its_tasks_time_limit_fails_naming_it_and_the_others_go_on(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=20",
             "hydra.launcher.max_num_timeout=0"]  # fmt: skip
    cmd = sweep_cmd(sweep, *GRID, *SLURM, *limit)
    sweep_process = start(cmd + hold(signals), log)
    try:
        sweep_process.wait(timeout=400)
    finally:
        sweep_process.kill()
    output = log.read_text()
    assert sweep_process.returncode == 1 and "Traceback" not in output, output
    after = records(sweep)
    held = [m for job, m in after.items() if "model.width=10" in job]
    assert len(held) == 2 and all(m["error"].startswith("SLURM: TIMEOUT") for m in held), held
    assert sum(m["status"] == "ok" for m in after.values()) == 6
    assert (sweep / "report" / "index.html").exists()
    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sorted(m["status"] for m in records(sweep).values()) == ["ok"] * 8


def test_a_requeued_task_runs_its_job_again_skipping_what_finished(tmp_path):
    # scontrol requeue: what a preemption with PreemptMode=REQUEUE does to a task
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    sweep_process = start(sweep_cmd(sweep, *GRID, *SLURM) + hold(signals), log)
    try:
        task = held_task(sweep, signals, sweep_process)
        first = int((signals / HELD).read_text())
        (signals / HELD).unlink()
        subprocess.run(["scontrol", "requeue", task], check=True)
        assert held_task(sweep, signals, sweep_process) == task  # the same task, once more
        assert int((signals / HELD).read_text()) != first  # in a new process
        with open(signals / RELEASE, "w"):  # let the held job finish
            pass
        sweep_process.wait(timeout=300)
    finally:
        sweep_process.kill()
    output = log.read_text()
    assert sweep_process.returncode == 0, output
    assert sorted(m["status"] for m in records(sweep).values()) == ["ok"] * 8


def test_sigterm_of_the_main_process_cancels_its_tasks(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    sweep_process = start(sweep_cmd(sweep, *GRID, *SLURM) + hold(signals), log)
    try:
        held_task(sweep, signals, sweep_process)
        assert not gone(sweep)
        sweep_process.send_signal(signal.SIGTERM)
        sweep_process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while not gone(sweep):
            assert time.monotonic() < deadline, "tasks still in squeue 30 s after SIGTERM"
            time.sleep(0.5)
    finally:
        sweep_process.kill()
    output = log.read_text()
    assert sweep_process.returncode == 128 + signal.SIGTERM and "Traceback" not in output
    assert "stopped by SIGTERM" in output
    held = [m for job, m in records(sweep).items() if "model.width=10" in job]
    assert held and all(m["status"] == "failed" for m in held)


def test_a_rerun_beside_a_killed_sweeps_tasks_is_refused_until_they_are_gone(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM)
    sweep_process = start(cmd + hold(signals), log)
    try:
        held_task(sweep, signals, sweep_process)
        os.kill(sweep_process.pid, signal.SIGKILL)  # no chance to cancel anything
        sweep_process.wait()
    finally:
        sweep_process.kill()
    [array] = folder_tasks(sweep)
    refused = run(cmd)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert f"SLURM jobs {array} of this folder are still queued or running" in line
    assert f"scancel {array}" in line

    subprocess.run(["scancel", array], check=True)
    wait_for(lambda: gone(sweep), "the tasks gone after scancel")
    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sorted(m["status"] for m in records(sweep).values()) == ["ok"] * 8


def test_a_search_on_slurm_ends_with_its_trials_one_task_cancelled(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    search = ["hparams_search=bayes", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
              "seed=0,1", *TINY]  # fmt: skip
    cmd = sweep_cmd(sweep, *search, *SLURM, "hydra.launcher.retries=0")
    sweep_process = start(cmd + hold_overrides(signals, "hydra.job.num", 1), log)
    try:
        task = held_task(sweep, signals, sweep_process, job="1@")
        subprocess.run(["scancel", task], check=True)
        sweep_process.wait(timeout=300)
    finally:
        sweep_process.kill()
    output = log.read_text()
    assert "Traceback" not in output, output
    study = load_study(sweep)
    states = {t.number: t.state.name for t in study.trials}
    assert states[1] == "FAIL" and "SLURM: CANCELLED" in study.trials[1].user_attrs["error"]
    assert sum(s in ("COMPLETE", "FAIL") for s in states.values()) == 4


def test_a_partition_slurm_refuses_ends_the_sweep_in_one_line(tmp_path):
    done = run(sweep_cmd(tmp_path / "s", *GRID, *SLURM, "hydra.launcher.partition=nope"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: hydra.launcher: SLURM refused its tasks") and "nope" in line
