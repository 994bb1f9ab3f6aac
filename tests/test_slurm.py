"""Sweeps on a real one-node SLURM cluster (tests/slurm_cluster.sh; skipped where none answers,
a failure under CI=true) through hydra/launcher=slurm: Dask workers as SLURM batch jobs, the
scheduler in the sweep's main process on the loopback interface. What SLURM does to a worker
(scancel, a wall time) or a signal does to the main process never loses a finished job nor
trains one twice at once. A job is held in its training by tests/hold.py while SLURM acts on
its worker: no time window decides what has finished."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from src.report.study import load_study

from .conftest import ROOT, TINY
from .hold import HELD, RELEASE, hold_overrides
from .test_launchers import ENV, records, sweep_cmd, wait_for

pytestmark = pytest.mark.slurm

SLURM = ["hydra/launcher=slurm", "hydra.launcher.workers=2", "hydra.launcher.interface=lo"]
GRID = ["model.depth=1", "model.width=8,9,10,11", "seed=0,1", "logger=none", *TINY]
WORKER = "sweep-worker"  # the worker batch jobs' name


def squeue_workers() -> list[str]:
    listed = subprocess.run(
        ["squeue", "--me", "-h", "-n", WORKER, "-o", "%i"], capture_output=True, text=True
    )
    return listed.stdout.split()


@pytest.fixture(autouse=True)
def _cancel_leftover_workers():
    """A test that fails half way leaves no worker holding the cluster's CPUs for the next."""
    yield
    if squeue_workers():
        subprocess.run(["scancel", "--me", "-n", WORKER])
        wait_for(lambda: not squeue_workers(), "the leftover workers gone", timeout=60)


def run(cmd: list[str], env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT)


def results(sweep: Path) -> list[dict]:
    """results.csv without the time, which differs between two trainings of the same runs."""
    with (sweep / "results.csv").open() as f:
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    return sorted(rows, key=lambda r: r["job_dir"])


def held_worker(signals: Path, process: subprocess.Popen) -> str:
    """The SLURM job id of the worker running the held job, once held (and the mark gone)."""
    wait_for((signals / HELD).exists, "the job held", process)
    pid = (signals / HELD).read_text()
    (signals / HELD).unlink()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    [job] = [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"SLURM_JOB_ID=")]
    return job


def sacct(job_ids: list[str]) -> list[dict]:
    """SLURM's accounting of these jobs: state, start and end."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,State,Start,End"],
        capture_output=True,
        text=True,
    ).stdout
    rows = [
        dict(zip(("id", "state", "start", "end"), line.split("|"))) for line in out.splitlines()
    ]
    return [r for r in rows if r["id"] in job_ids]


def folder_jobs(sweep: Path) -> list[str]:
    path = sweep / ".cluster" / "jobs"
    return path.read_text().split() if path.exists() else []


def all_ok(sweep: Path, n: int = 8) -> bool:
    return sorted(m["status"] for m in records(sweep).values()) == ["ok"] * n


def counting_path(tmp_path: Path) -> tuple[dict, Path]:
    """An environment whose SLURM commands are wrappers that log each call, then run SLURM's."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for command in ("squeue", "sacct", "sbatch", "scancel", "sinfo", "scontrol"):
        real = subprocess.run(["which", command], capture_output=True, text=True).stdout.strip()
        wrapper = bin_dir / command
        wrapper.write_text(f'#!/bin/sh\necho {command} >> {calls}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    return {**ENV, "PATH": f"{bin_dir}:{ENV['PATH']}"}, calls


def test_a_grid_on_slurm_gives_the_joblib_grids_results_asking_slurm_rarely(tmp_path):
    grid = ["model.depth=1,2", "model.width=3,5", "seed=0,1", "logger=none", *TINY]
    joblib = run(sweep_cmd(tmp_path / "joblib", *grid))
    assert joblib.returncode == 0, joblib.stderr
    env, calls = counting_path(tmp_path)
    began = time.monotonic()
    slurm = run(sweep_cmd(tmp_path / "slurm", *grid, *SLURM), env=env)
    seconds = time.monotonic() - began
    output = slurm.stdout + slurm.stderr
    assert slurm.returncode == 0, output
    assert results(tmp_path / "slurm") == results(tmp_path / "joblib")
    assert output.count("val_loss=") == 8  # a progress line per run, in the main process
    assert "[8/8]" in output and "srun" not in output and "Traceback" not in output
    assert output.count("Dask dashboard") == 1
    assert not squeue_workers()  # the workers ended with the sweep
    asked = calls.read_text().split()
    # sbatch --test-only and the submissions; squeue or sacct once per 30 s at most
    assert asked.count("squeue") + asked.count("sacct") <= 1 + seconds / 30, (asked, seconds)
    assert 1 <= asked.count("sbatch") - 1 <= 2  # never more workers than jobs waiting


def test_a_cancelled_worker_reruns_its_job_then_fails_it_with_slurms_state(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM, "logger=wandb")  # every worker's runs in <sweep>/wandb
    process = start(cmd + hold_overrides(signals, "model.width", 10), log)
    try:
        for _ in range(2):  # run again on another worker, then failed (retries=1)
            subprocess.run(["scancel", held_worker(signals, process)], check=True)
        process.wait(timeout=300)
    finally:
        process.kill()
    output = log.read_text()
    assert process.returncode == 1 and "Traceback" not in output, output
    after = records(sweep)
    held = {job: m for job, m in after.items() if "model.width=10" in job}
    assert len(held) == 2 and all(m["status"] == "failed" for m in held.values())
    assert all(m["error"].startswith("SLURM: CANCELLED") for m in held.values()), held
    assert all(".cluster/logs/sweep-worker-" in m["error"] for m in held.values())
    assert sum(m["status"] == "ok" for m in after.values()) == 6  # the others went on
    assert (sweep / "report" / "index.html").exists() and "6 ok" in output

    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "6 finished runs found there, skipped" in rerun.stdout + rerun.stderr
    assert all_ok(sweep)
    after = records(sweep)
    runs = [p.name.split("-", 3)[3] for p in (sweep / "wandb").glob("offline-run-*")]
    assert len(runs) == 9  # one per seed, the cut-short ones gone, and the report's
    assert {m["wandb_id"] for m in after.values()} < set(runs)


def test_one_worker_past_its_wall_time_hands_over_and_every_job_ends_ok(tmp_path):
    # A wall time of 1 min: the worker is retired 40 s after it reached the scheduler, while
    # it holds a job; that job runs again in the next worker's batch job, which takes over.
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(
        sweep, *GRID, *SLURM, "hydra.launcher.workers=1", "hydra.launcher.timeout_min=1"
    )
    process = start(cmd + hold_overrides(signals, "model.width", 10), log)
    try:
        first = held_worker(signals, process)
        assert held_worker(signals, process) != first  # cut short, running again elsewhere
        with open(signals / RELEASE, "w"):  # now let it finish
            pass
        process.wait(timeout=300)
    finally:
        process.kill()
    output = log.read_text()
    assert process.returncode == 0 and "Traceback" not in output, output
    assert all_ok(sweep)
    jobs = sacct(folder_jobs(sweep))
    assert len(jobs) >= 2, jobs  # handed over at least once
    assert not any(j["state"].startswith("TIMEOUT") for j in jobs), jobs  # retired in time
    rerun = run(cmd)  # at once, its workers gone or going
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "8 finished runs found there, skipped" in rerun.stdout + rerun.stderr


def test_sigterm_of_the_main_process_cancels_its_workers(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM)
    process = start(cmd + hold_overrides(signals, "model.width", 10), log)
    try:
        held_worker(signals, process)
        assert squeue_workers()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        wait_for(lambda: not squeue_workers(), "no worker in squeue after SIGTERM", timeout=30)
    finally:
        process.kill()
    output = log.read_text()
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in output, output
    assert "stopped by SIGTERM" in output
    held = [m for job, m in records(sweep).items() if "model.width=10" in job]
    assert held and all(m["status"] == "failed" for m in held)


def test_workers_of_a_killed_sweep_end_by_themselves(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM, "hydra.launcher.death_timeout_s=5")
    process = start(cmd + hold_overrides(signals, "model.width", 10), log)
    try:
        held_worker(signals, process)
        os.kill(process.pid, signal.SIGKILL)  # no chance to cancel anything
        process.wait()
    finally:
        process.kill()
    # no scancel: each worker loses its scheduler and ends within its death time-out
    wait_for(lambda: not squeue_workers(), "the workers ended by themselves", timeout=60)
    assert all(j["state"] != "RUNNING" for j in sacct(folder_jobs(sweep)))


def test_a_rerun_at_once_after_sigkill_trains_each_configuration_once(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    cmd = sweep_cmd(sweep, *GRID, *SLURM)
    process = start(cmd + hold_overrides(signals, "model.width", 10), log)
    try:
        held_worker(signals, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    old = folder_jobs(sweep)
    assert old and set(old) & set(squeue_workers())  # still there: the held one at least
    rerun = run(cmd)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0 and "Traceback" not in output, output
    assert all_ok(sweep)
    # Every worker of the killed sweep had ended before any of the rerun's started: no
    # configuration was trained by two workers at once.
    new = sorted(set(folder_jobs(sweep)) - set(old))
    assert new, output
    ended = max(datetime.fromisoformat(j["end"]) for j in sacct(old))
    began = min(datetime.fromisoformat(j["start"]) for j in sacct(new))
    assert ended <= began, (sacct(old), sacct(new))


def test_a_search_on_slurm_ends_with_its_trials_one_worker_cancelled(tmp_path):
    sweep, signals, log = tmp_path / "sweep", tmp_path / "signals", tmp_path / "log"
    search = ["hparams_search=bayes", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
              "seed=0,1", "logger=none", *TINY]  # fmt: skip
    cmd = sweep_cmd(sweep, *search, *SLURM, "hydra.launcher.retries=0")
    process = start(cmd + hold_overrides(signals, "hydra.job.num", 1), log)
    try:
        subprocess.run(["scancel", held_worker(signals, process)], check=True)
        process.wait(timeout=300)
    finally:
        process.kill()
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
    assert line.startswith("error: hydra.launcher: SLURM refused its worker jobs")
    assert "nope" in line
    assert not squeue_workers()


def test_a_scheduler_the_workers_cannot_reach_is_said_in_one_line(tmp_path):
    # Each worker starts in a network namespace of its own (unshare -n) with a loopback
    # interface of its own: nothing listens there on the scheduler's port.
    python = tmp_path / "python"
    python.write_text(
        f"#!/bin/sh\nexec unshare -n sh -c 'ip link set lo up && exec {sys.executable} \"$@\"' "
        'sh "$@"\n'
    )
    python.chmod(0o755)
    cmd = sweep_cmd(tmp_path / "s", *GRID, *SLURM, f"hydra.launcher.python={python}",
                    "hydra.launcher.death_timeout_s=5", "hydra.launcher.workers=1")  # fmt: skip
    done = run(cmd, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: hydra.launcher.interface: the workers could not reach")
    assert not squeue_workers()
