"""The processes that train: what each one imports, and starting joblib's workers early.

A joblib sweep's workers start only when Hydra launches the first job, after its sweeper has
composed every job's config once to check it (about 0.05 s a job, one after another). Each
worker then spends about 3 s importing Lightning. `start_early` starts the workers and their
imports when the sweep starts, so the two overlap.
"""

from __future__ import annotations

import gc
import sys
import threading

from omegaconf import DictConfig, OmegaConf


def training_stack():
    """Lightning and the classes built on it (imported on first use, not at start-up).

    The first import leaves millions of long-lived objects (torch._dynamo, sympy); freezing
    them keeps the garbage collector from walking them again, in every full collection and in
    the one at exit (about 1 s a process).
    """
    first_import = "pytorch_lightning" not in sys.modules
    import pytorch_lightning as pl

    from src.data import GeneratedDataModule
    from src.model import MLPClassifier

    if first_import:
        gc.freeze()
    return pl, GeneratedDataModule, MLPClassifier


def _import_in_worker() -> None:
    training_stack()


def start_early(launcher: DictConfig) -> threading.Thread | None:
    """Start the joblib launcher's workers now, each importing the training stack.

    Uses a joblib.Parallel built from the launcher's own settings, so that the launcher's
    Parallel finds the same reusable worker pool and keeps it. Returns the thread that waits
    for the imports (None when the launcher runs its jobs in this process).
    """
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed
    from joblib.parallel import LokyBackend

    settings = OmegaConf.to_container(launcher, resolve=True)
    settings.pop("_target_", None)
    settings["backend"] = "loky"  # as the launcher does
    process_joblib_cfg(settings)
    n_workers = LokyBackend().effective_n_jobs(settings["n_jobs"])
    if n_workers < 2:
        return None

    def warm_up() -> None:
        Parallel(**settings)(delayed(_import_in_worker)() for _ in range(n_workers))

    thread = threading.Thread(target=warm_up, name="start-workers", daemon=True)
    thread.start()
    return thread
