"""A sweep under faults: its main process killed (SIGKILL, SIGTERM, SIGHUP, Ctrl-C), a second
sweep into its folder, and the grid composed before any job (src/sweep/lifetime.py, lock.py,
hydra_plugins/stacked_sweepers/overrides.py). Each wait is on a file or a process, never on
a time window."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException

from hydra_plugins.stacked_sweepers.overrides import check_jobs, expand, parse
from src.errors import ConfigError
from src.sweep.lifetime import descendants
from src.sweep.lock import holder, lock_sweep

from .conftest import CONF, ROOT

GRID = ["model.depth=0,2", "model.width=3,10", "seed=range(2)", "trainer.max_epochs=40",
        "data.n_train=400", "data.n_val=100", "data.n_test=100", "logger=wandb"]  # fmt: skip


def sweep_command(sweep: Path) -> list[str]:
    return [sys.executable, "-m", "src.train", "-m", *GRID, f"hydra.sweep.dir={sweep}"]


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def results(sweep: Path) -> list[dict]:
    """results.csv without what differs between two trainings of the same runs (the time, and
    the wandb run: each sweep's ids are its own)."""
    differ = ("seconds", "wandb_id", "wandb_dir")
    with (sweep / "results.csv").open() as f:
        rows = [{k: v for k, v in row.items() if k not in differ} for row in csv.DictReader(f)]
    return sorted(rows, key=lambda r: r["job_dir"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict]:
    sweep = tmp_path_factory.mktemp("whole") / "sweep"
    done = subprocess.run(sweep_command(sweep), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return results(sweep)


def interrupt(sweep: Path, how: signal.Signals) -> tuple[subprocess.CompletedProcess, float]:
    """Start the sweep, send `how` once a job has finished (to the main process; Ctrl-C to
    its whole process group, as a terminal does), and wait until the main process and every
    process it had started are gone. Returns its output and the moment it was all gone."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    process = subprocess.Popen(sweep_command(sweep), cwd=ROOT, start_new_session=True, **pipes)
    wait_for(lambda: any(sweep.rglob("metrics.json")), "a finished job")
    workers = descendants(process.pid)
    assert workers, "the sweep has no worker processes"
    if how == signal.SIGINT:
        os.killpg(process.pid, how)
    else:
        os.kill(process.pid, how)
    out, err = process.communicate(timeout=120)
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in workers), "workers gone", 30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), time.time()


def written_after(sweep: Path, moment: float) -> list[Path]:
    return [p for p in sweep.rglob("*") if p.is_file() and p.stat().st_mtime > moment]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_an_interrupted_sweep_stops_whole_and_a_rerun_loses_nothing(tmp_path, how, uninterrupted):
    sweep = tmp_path / "sweep"
    done, gone = interrupt(sweep, how)
    time.sleep(0.5)  # anything left alive would write on; nothing is
    assert written_after(sweep, gone) == []
    if how == signal.SIGKILL:
        assert done.returncode == -signal.SIGKILL
    else:  # one line, no traceback; what was running is recorded as failed
        assert done.returncode == 128 + how, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("stopped by")]
        assert "rerun the same command to resume" in line and "Traceback" not in done.stderr
    rerun = subprocess.run(sweep_command(sweep), cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert results(sweep) == uninterrupted


def test_a_second_sweep_into_a_folder_in_use_is_refused_and_allowed_once_it_is_gone(tmp_path):
    sweep = tmp_path / "sweep"
    script = f"from src.sweep.lock import lock_sweep; lock_sweep({str(sweep)!r}); print('held', flush=True); input()"  # noqa: E501
    first = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert first.stdout.readline() == "held\n"
    assert f"pid {first.pid}" in holder(sweep)
    with pytest.raises(ConfigError, match=f"a sweep is running there: .* pid {first.pid}"):
        lock_sweep(sweep)
    done = subprocess.run(sweep_command(sweep), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: hydra.sweep.dir=") and f"pid {first.pid}" in done.stderr
    assert not list(sweep.rglob("metrics.json"))  # nothing trained
    first.kill()
    first.wait()
    assert holder(sweep) is None  # the OS let go of it with the process
    lock_sweep(sweep)
    assert "pid" in holder(sweep)


@pytest.fixture
def loader_and_master():
    from hydra import compose

    import src.train  # noqa: F401  (its resolvers)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        master = compose("train", ["logger=none"], return_hydra_config=True)
        yield GlobalHydra.instance().config_loader(), master


@pytest.mark.parametrize(
    "grid",
    [
        ["model.depth=0,1,2", "model.width=1,2"],
        ["model.depth=0,1", "model.widht=1,2"],  # an unknown key
        ["model.depth=0,1", "+model.width=1,2"],  # adds a key that is there
        ["model.depth=0,1", "++model.extra=1,2"],
        ["data=xor,moons", "data.noise=0.1,0.2"],
        ["data=xor,nope", "model.depth=1"],  # an unknown group option
        ["model.depth=0,1", "~model.norm"],
        ["model.depth=0,1", "~model.nothing"],
        ["hydra.sweep.subdir=x", "model.depth=[1,2]"],
        ["trainer.max_epochs=abc,2"],  # no types in these configs: fine for Hydra
        ["+model.extra=1", "model.extra.deep=2"],  # two overrides of one node in a job
    ],
)
def test_the_grid_check_refuses_exactly_what_composing_every_job_refuses(loader_and_master, grid):
    loader, master = loader_and_master
    jobs = expand(parse(None, grid))

    def compose_each():
        for job in jobs:
            loader.load_sweep_config(master_config=master, sweep_overrides=job)

    refused_by_hydra = refused_here = None
    try:
        compose_each()
    except Exception as error:  # noqa: BLE001  Hydra's own kinds of refusal
        refused_by_hydra = type(error).__name__
    try:
        check_jobs(loader, master, jobs)
    except ConfigCompositionException as error:
        refused_here = type(error).__name__
    assert (refused_here is None) == (refused_by_hydra is None), (refused_by_hydra, refused_here)


def test_the_report_of_a_sweep_still_running_says_so_and_draws_what_has_finished(tmp_path, capsys):
    from src.report.grid import main

    from .test_results import make_sweep

    sweep = make_sweep(tmp_path / "sweep", status={(2, 10, 1): "missing"})
    script = f"from src.sweep.lock import lock_sweep; lock_sweep({str(sweep)!r}); print('held', flush=True); input()"  # noqa: E501
    first = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert first.stdout.readline() == "held\n"
        assert main([str(sweep)]) == 0
    finally:
        first.kill()
        first.wait()
    err = capsys.readouterr().err
    assert "the sweep is running (" in err and f"pid {first.pid}): drawing what has finished" in err
    assert (sweep / "report" / "index.html").exists()
