"""Real multiruns in subprocesses: launchers agree, a killed sweep resumes, a dead worker counts.

A sweep is stopped half way by holding one job in the middle of its training (tests/hold.py)
and waiting for the file that says so: no time window decides what has finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.sweep.runs import report_run

from .conftest import ROOT, TINY, wandb_run_info
from .hold import HELD, hold_overrides

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def sweep_cmd(sweep_dir, *overrides):
    return [sys.executable, "-m", "src.train", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]


def records(sweep_dir: Path) -> dict[str, dict]:
    """metrics.json of every job, keyed by the job's folder relative to the sweep."""
    return {
        str(p.parent.relative_to(sweep_dir)): json.loads(p.read_text())
        for p in sweep_dir.rglob("metrics.json")
    }


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout=300.0):
    """Poll `condition` until it holds; fail naming `what` after a generous `timeout`, or as
    soon as `process` (the sweep) has ended without it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the sweep ended before: {what}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("launcher", ["local", "joblib", "submitit_local"])
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


def seeds_of(sweep_dir: Path, width: int) -> list[str]:
    """The seed folders of the job of `width` (relative to the sweep), as far as it started."""
    return sorted(
        str(p.relative_to(sweep_dir))
        for p in sweep_dir.glob("*/seed=*")
        if f"model.width={width}" in p.parent.name.split(",")
    )


def _four_jobs(sweep_dir, *extra):
    # four jobs (stacks of two seeds), in the order of their widths
    return sweep_cmd(sweep_dir, "model.depth=2", "model.width=8,9,10,11", "seed=0,1", *TINY, *extra)


def test_a_killed_sweep_resumes_without_retraining_what_finished(tmp_path):
    sweep, signals = tmp_path / "sweep", tmp_path / "signals"
    cmd = _four_jobs(sweep, "hydra/launcher=basic", "logger=wandb")
    first = subprocess.Popen(
        cmd + hold_overrides(signals, "model.width", 10),
        cwd=ROOT,
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # the third job (width 10) is held in its training: the first two have finished
        wait_for((signals / HELD).exists, "the third job held", first)
        assert int((signals / HELD).read_text()) == first.pid  # the basic launcher: in-process
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no chance to clean up: like a power cut
        first.wait()
    before = records(sweep)
    assert sorted(before) == sorted(seeds_of(sweep, 8) + seeds_of(sweep, 9))
    assert all(m["status"] == "ok" for m in before.values())
    for job in seeds_of(sweep, 10):  # in flight: its record and wandb run started, no metrics
        assert (sweep / job / ".hydra" / "overrides.yaml").exists()
        assert not (sweep / job / "metrics.json").exists()
    assert seeds_of(sweep, 11) == []  # never started
    cut_short = wandb_runs(sweep)  # 4 finished, 2 cut short, all in <sweep>/wandb/
    finished = {m["wandb_id"] for m in before.values()}
    assert len(cut_short) == 6 and finished < set(cut_short)
    for run_id, folder in cut_short.items():
        ended = wandb_run_info(next(folder.glob("*.wandb")).read_bytes())["exit_code"] == 0
        assert ended == (run_id in finished), run_id

    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 finished runs found there, skipped" in done.stdout + done.stderr
    after = records(sweep)
    assert len(after) == 8 and all(m["status"] == "ok" for m in after.values())
    for job, metrics in before.items():
        assert after[job] == metrics  # not retrained: the very same record
    # One finished run per seed, plus the report's: the cut-short ones were replaced, under
    # the same ids (a synced rerun is no second run of the seed); the finished ones kept.
    runs = wandb_runs(sweep)
    assert set(runs) == {m["wandb_id"] for m in after.values()} | {report_run(sweep).id}
    assert set(cut_short) < set(runs)
    assert not any(f.exists() for i, f in cut_short.items() if i not in finished)
    for run_id, folder in runs.items():
        info = wandb_run_info(next(folder.glob("*.wandb")).read_bytes())
        assert info["run_id"] == run_id and info["exit_code"] == 0
        assert (folder == cut_short.get(run_id)) == (run_id in finished)  # the very same run


def wandb_runs(sweep_dir: Path) -> dict[str, Path]:
    """The sweep's wandb runs, by id: one folder each, all in `<sweep>/wandb/`."""
    folders = list((sweep_dir / "wandb").glob("offline-run-*"))
    runs = {f.name.split("-", 3)[-1]: f for f in folders}
    assert len(runs) == len(folders), folders  # no id twice
    assert not list(sweep_dir.glob("*/seed=*/wandb"))  # none in the seeds' own folders
    return runs


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
    sweep, signals = tmp_path / "sweep", tmp_path / "signals"
    cmd = _four_jobs(sweep, "hydra/launcher=local", "hydra.launcher.n_jobs=2", "logger=none")
    log = (tmp_path / "output.txt").open("w")  # a file, not a pipe: nothing waits on a reader
    sweep_process = subprocess.Popen(
        cmd + hold_overrides(signals, "model.width", 10),
        cwd=ROOT,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:  # once the third job is held in its training (two workers: one job finished before
        # it could start), kill the workers
        wait_for((signals / HELD).exists, "the third job held", sweep_process)
        workers = _loky_workers(sweep_process.pid)
        assert int((signals / HELD).read_text()) in workers
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        sweep_process.wait(timeout=120)
    finally:
        sweep_process.kill()
        log.close()
    output = (tmp_path / "output.txt").read_text()
    assert sweep_process.returncode != 0
    after = records(sweep)
    failed = {job: m for job, m in after.items() if m["status"] == "failed"}
    held = seeds_of(sweep, 10)  # the job the worker was running is counted as failed ...
    assert len(held) == 2 and set(held) <= set(failed), output
    assert all("rerun the sweep" in m["error"] for m in failed.values())
    assert all(f"failed: {job}" in output for job in failed)  # ... and reported
    assert any(m["status"] == "ok" for m in after.values())  # what finished is kept

    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(m["status"] for m in records(sweep).values()) == ["ok"] * 8


OLD = 10**18  # ns since 1970 (2001-09-09): a time no file written by this test can have


def _set_old(job_dir: Path) -> dict[str, bytes]:
    """Date every file of a job's folder back to OLD; return each file's content."""
    files = {}
    for p in job_dir.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(OLD, OLD))
            files[str(p.relative_to(job_dir))] = p.read_bytes()
    return files


def _untouched(job_dir: Path, files: dict[str, bytes]) -> bool:
    """The same files, none written since _set_old (any write makes its mtime now)."""
    now = {str(p.relative_to(job_dir)): p for p in job_dir.rglob("*") if p.is_file()}
    return now.keys() == files.keys() and all(
        p.stat().st_mtime_ns == OLD and p.read_bytes() == files[name] for name, p in now.items()
    )


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
    kept = {d: _set_old(sweep / d) for d in before if d != str(lost.relative_to(sweep))}

    done = run()
    assert done.returncode == 0, done.stderr
    assert "5 finished runs found there, skipped" in done.stdout + done.stderr
    after = records(sweep)
    for job, metrics in before.items():
        # retrained as the whole stack: its numbers are the first attempt's, bit for bit
        assert {k: v for k, v in after[job].items() if k != "seconds"} == {
            k: v for k, v in metrics.items() if k != "seconds"
        }
    for job, files in kept.items():
        assert _untouched(sweep / job, files), job  # finished seeds: not a file written


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
