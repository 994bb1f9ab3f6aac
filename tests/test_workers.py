"""Workers started early are the ones the joblib launcher then uses, Lightning already loaded."""

import os
import subprocess
import sys

from hydra import compose, initialize_config_dir
from joblib import Parallel, delayed

from src.workers import start_early

from .conftest import CONF, ROOT


def _launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def _worker_state() -> tuple[int, bool]:
    return os.getpid(), "pytorch_lightning" in sys.modules


def test_the_launcher_finds_the_workers_started_early_with_lightning_loaded():
    launcher = _launcher("hydra.launcher.n_jobs=2")
    start_early(launcher).join(timeout=120)
    # What Hydra's joblib launcher does with the same settings
    settings = {k: v for k, v in launcher.items() if k != "_target_"} | {"backend": "loky"}
    states = Parallel(**settings)(delayed(_worker_state)() for _ in range(4))
    assert len({pid for pid, _ in states}) <= 2
    assert all(loaded for _, loaded in states)  # new workers would not have it


def test_no_workers_are_started_for_a_launcher_that_runs_jobs_in_this_process():
    assert start_early(_launcher("hydra.launcher.n_jobs=1")) is None


def test_a_sweeps_main_process_does_not_import_torch():
    # what `python -m src.train -m` loads before its workers train (Hydra's callbacks included)
    code = "import sys, src.train, src.callbacks; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
