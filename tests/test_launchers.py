"""Real multiruns in subprocesses: launchers agree, a killed sweep resumes, a dead worker counts."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TINY

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def sweep_cmd(sweep_dir, *overrides):
    return [sys.executable, "-m", "src.train", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]


def records(sweep_dir: Path) -> dict[str, dict]:
    """metrics.json of every job, keyed by the job's folder relative to the sweep."""
    return {
        str(p.parent.relative_to(sweep_dir)): json.loads(p.read_text())
        for p in sweep_dir.rglob("metrics.json")
    }


def wait_for(condition, timeout=120.0):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_give_the_basic_launchers_numbers(tmp_path, launcher):
    grid = ["model.depth=1", "model.width=3", "seed=0,1", "logger=none", *TINY]
    for name in ("basic", launcher):
        done = subprocess.run(
            sweep_cmd(tmp_path / name, f"hydra/launcher={name}", *grid),
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    basic, other = records(tmp_path / "basic"), records(tmp_path / launcher)
    assert len(basic) == 2 and basic.keys() == other.keys()
    for job, metrics in basic.items():
        assert metrics["status"] == other[job]["status"] == "ok"
        assert metrics["history"] == other[job]["history"]
        assert metrics["test_loss"] == other[job]["test_loss"]


def just_started(sweep_dir: Path) -> list[Path]:
    """Jobs under way for less than half a second: sure to be still running a moment later."""
    return [
        p.parent.parent
        for p in sweep_dir.rglob(".hydra/overrides.yaml")
        if not (p.parent.parent / "metrics.json").exists() and time.time() - p.stat().st_mtime < 0.5
    ]


def _slow_jobs(sweep_dir, *extra):
    # four jobs (stacks of two seeds) of a second or two each, so that the test can stop the
    # sweep half way
    return sweep_cmd(
        sweep_dir,
        "model.depth=2",
        "model.width=8,9,10,11",
        "seed=0,1",
        "trainer.max_epochs=60",
        *extra,
    )


def test_a_killed_sweep_resumes_without_retraining_what_finished(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = _slow_jobs(sweep, "hydra/launcher=basic", "logger=wandb")
    first = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # stop it once two stacks (four seeds) finished and a third has just started
        wait_for(lambda: len(records(sweep)) >= 4 and just_started(sweep))
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no chance to clean up: like a power cut
        first.wait()
    before = records(sweep)
    assert 4 <= len(before) < 8, "the sweep finished before it could be killed"
    assert all(m["status"] == "ok" for m in before.values())
    started = list(sweep.rglob(".hydra/overrides.yaml"))
    assert len(started) > len(before)  # a job was in flight, and it left no metrics.json

    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(before)} already finished" in done.stdout + done.stderr
    after = records(sweep)
    assert len(after) == 8 and all(m["status"] == "ok" for m in after.values())
    for job, metrics in before.items():
        assert after[job] == metrics  # not retrained: the very same record
    for job in after:
        runs = list((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, (job, runs)  # the killed attempt's run did not linger


def _loky_workers(parent: int) -> list[int]:
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"popen_loky_posix" in cmdline:
            workers.append(int(stat.parent.name))
    return workers


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the workers through /proc")
def test_a_dead_worker_fails_its_job_and_loses_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = _slow_jobs(sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=none")
    sweep_process = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    try:  # once a job has finished and another has just started, kill the workers
        wait_for(lambda: records(sweep) and just_started(sweep))
        for worker in _loky_workers(sweep_process.pid):
            os.kill(worker, signal.SIGKILL)
        output, _ = sweep_process.communicate(timeout=120)
    finally:
        sweep_process.kill()
    assert sweep_process.returncode != 0
    after = records(sweep)
    failed = {job: m for job, m in after.items() if m["status"] == "failed"}
    assert failed, output  # the job the worker was running is counted as failed ...
    assert all("rerun the sweep" in m["error"] for m in failed.values())
    assert all(f"failed: {job}" in output for job in failed)  # ... and reported
    assert any(m["status"] == "ok" for m in after.values())  # what finished is kept

    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(m["status"] for m in records(sweep).values()) == ["ok"] * 8


def _files(job_dir: Path) -> dict[str, int]:
    """Every file of a job's folder and when it was last written."""
    return {str(p.relative_to(job_dir)): p.stat().st_mtime_ns for p in job_dir.rglob("*")}


def test_an_unfinished_seed_retrains_its_stack_bit_for_bit_and_writes_only_itself(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = sweep_cmd(sweep, "model.depth=1", "model.width=2,3", "seed=range(3)", "logger=none")
    cmd += ["hydra/launcher=basic", *TINY]
    run = lambda: subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)  # noqa: E731
    assert (done := run()).returncode == 0, done.stderr
    before = records(sweep)
    assert len(before) == 6
    [lost] = [sweep / d for d in before if "model.width=2" in d and d.endswith("seed=1")]
    (lost / "metrics.json").unlink()  # as if the sweep had stopped while writing this seed
    kept = {d: _files(sweep / d) for d in before if d != str(lost.relative_to(sweep))}

    done = run()
    assert done.returncode == 0, done.stderr
    assert "5 already finished" in done.stdout + done.stderr
    after = records(sweep)
    for job, metrics in before.items():
        # retrained as the whole stack: its numbers are the first attempt's, bit for bit
        assert {k: v for k, v in after[job].items() if k != "seconds"} == {
            k: v for k, v in metrics.items() if k != "seconds"
        }
    for job, files in kept.items():
        assert _files(sweep / job) == files, job  # finished seeds: not a file touched


def test_a_bad_stacking_switch_is_refused_in_one_line(tmp_path):
    done = subprocess.run(
        sweep_cmd(tmp_path / "s", "seed=0,1", "hydra.sweeper.stack_seeds=maybe"),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "hydra.sweeper.stack_seeds" in line and "true or false" in line
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("metrics.json"))
