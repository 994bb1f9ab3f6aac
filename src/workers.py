"""The processes that train: what each one imports, and starting joblib's workers early.

A joblib sweep's workers start only when Hydra launches the first job, after its sweeper has
composed every job's config once to check it (about 0.05 s a job, one after another). Each
worker then spends about 3 s importing Lightning. `start_early` starts the workers and their
imports when the sweep starts, so the two overlap.
"""

from __future__ import annotations

import contextlib
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


def _joblib_settings(launcher: DictConfig | None) -> tuple[dict, int] | None:
    """joblib.Parallel's arguments as Hydra's joblib launcher builds them, and its worker count;
    None for other launchers, or one that runs its jobs in this process."""
    if launcher is None or not launcher.get("_target_", "").endswith("JoblibLauncher"):
        return None
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib.parallel import LokyBackend

    settings = OmegaConf.to_container(launcher, resolve=True)
    settings.pop("_target_", None)
    settings["backend"] = "loky"  # as the launcher does
    process_joblib_cfg(settings)
    n_workers = LokyBackend().effective_n_jobs(settings["n_jobs"])
    return (settings, n_workers) if n_workers > 1 else None


def pool(launcher: DictConfig | None):
    """A joblib.Parallel on the joblib launcher's own reusable worker pool (the same settings
    find the same pool); None where `_joblib_settings` is."""
    from joblib import Parallel

    found = _joblib_settings(launcher)
    return Parallel(**found[0]) if found else None


def start_early(launcher: DictConfig) -> threading.Thread | None:
    """Start the joblib launcher's workers now, each importing the training stack; return the
    thread that waits for them (None when there are no workers to start)."""
    from joblib import Parallel, delayed

    found = _joblib_settings(launcher)
    if found is None:
        return None
    settings, n_workers = found

    def warm_up() -> None:
        # A failure here (a worker that cannot import) is the launcher's to report: it meets it too.
        with contextlib.suppress(Exception):
            Parallel(**settings)(delayed(_import_in_worker)() for _ in range(n_workers))

    thread = threading.Thread(target=warm_up, name="start-workers", daemon=True)
    thread.start()
    return thread
