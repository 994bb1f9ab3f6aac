"""The sweep's joblib workers, lent to the report once the jobs are done: torch and Lightning are
loaded there already (on the design-card grid: the report in 3.5 s rather than 8 s).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def pool(launcher: DictConfig | None):
    """A joblib.Parallel on the pool of workers of a launcher with joblib's settings (local,
    joblib); None for other launchers, or one that runs its jobs in this process."""
    if launcher is None or "n_jobs" not in launcher:
        return None
    from joblib import Parallel, effective_n_jobs

    from src.sweep.worker import joblib_settings

    # loky keeps one reusable pool per process, restarted by any change of its settings:
    # the launcher's own settings find the workers that ran the jobs.
    settings = joblib_settings(OmegaConf.to_container(launcher, resolve=True))
    return Parallel(**settings) if effective_n_jobs(settings["n_jobs"]) > 1 else None
