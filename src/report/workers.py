"""The sweep's worker processes, lent to the report once the jobs are done.

With the joblib launcher, the report's figures are drawn side by side by the workers that ran
the jobs: they have torch and Lightning loaded already, while the sweep's main process has
neither. On the design-card grid this took the report from about 8 s to 3.5 s.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def pool(launcher: DictConfig | None):
    """A joblib.Parallel on the joblib launcher's own reusable worker pool (the same settings
    find the same workers); None for other launchers, or one that runs its jobs in this process."""
    if launcher is None or not launcher.get("_target_", "").endswith("JoblibLauncher"):
        return None
    from joblib import Parallel, effective_n_jobs

    # loky keeps one reusable pool per process, restarted by any change of its settings:
    # the launcher's own settings find the workers that ran the jobs.
    settings = OmegaConf.to_container(launcher, resolve=True)
    settings.pop("_target_")
    settings["backend"] = "loky"  # as the launcher does
    return Parallel(**settings) if effective_n_jobs(settings["n_jobs"]) > 1 else None
