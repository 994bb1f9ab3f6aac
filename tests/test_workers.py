"""The report borrows the sweep's joblib workers: the launcher's own pool, not new processes."""

import os
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from joblib import Parallel, delayed
from omegaconf import OmegaConf

from src.report.workers import pool
from src.sweep.worker import joblib_settings

from .conftest import CONF


def _launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def _meet(folder: str, workers: int) -> int:
    """Wait until `workers` distinct processes have called this (with one task per worker, none
    can take two), then give this process's pid: every worker of the pool answers once."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(folder)) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_the_report_pool_is_the_workers_the_launcher_ran_the_jobs_on(tmp_path):
    launcher = _launcher("hydra.launcher.n_jobs=2")
    # What the local launcher runs its jobs on (hydra_plugins/stacked_sweepers/local_launcher.py)
    settings = joblib_settings(OmegaConf.to_container(launcher))
    jobs, report = tmp_path / "jobs", tmp_path / "report"
    jobs.mkdir()
    report.mkdir()
    ran_jobs = set(Parallel(**settings)(delayed(_meet)(str(jobs), 2) for _ in range(2)))
    drew = set(pool(launcher)(delayed(_meet)(str(report), 2) for _ in range(2)))
    assert len(ran_jobs) == 2 and drew == ran_jobs and os.getpid() not in drew


def test_no_pool_for_a_launcher_that_runs_its_jobs_in_this_process():
    assert pool(_launcher("hydra.launcher.n_jobs=1")) is None
    assert pool(_launcher("hydra/launcher=basic")) is None
    assert pool(_launcher("hydra/launcher=slurm")) is None
