"""The report borrows the sweep's joblib workers: the launcher's own pool, not new processes."""

import os

from hydra import compose, initialize_config_dir
from joblib import Parallel, delayed

from src.report.workers import pool

from .conftest import CONF


def _launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def test_the_report_pool_is_the_workers_the_launcher_ran_the_jobs_on():
    launcher = _launcher("hydra.launcher.n_jobs=2")
    # What Hydra's joblib launcher does with these settings
    settings = {k: v for k, v in launcher.items() if k != "_target_"} | {"backend": "loky"}
    ran_jobs = set(Parallel(**settings)(delayed(os.getpid)() for _ in range(4)))
    drew = set(pool(launcher)(delayed(os.getpid)() for _ in range(4)))
    assert drew <= ran_jobs and os.getpid() not in drew


def test_no_pool_for_a_launcher_that_runs_its_jobs_in_this_process():
    assert pool(_launcher("hydra.launcher.n_jobs=1")) is None
    assert pool(_launcher("hydra/launcher=basic")) is None
