"""`hydra/launcher=local` (the default): Hydra's joblib launcher, but sending the sweep's Hydra
state to each worker once rather than with every job (src/sweep/worker.py)."""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher import joblib_launcher


class LocalLauncher(joblib_launcher.JoblibLauncher):
    context_file: Path | None = None  # the sweep's Hydra state, written at the first launch

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed

        from src.sweep.worker import Context, joblib_settings, run_local_job

        if self.context_file is None:
            handle, name = tempfile.mkstemp(prefix="hydra-context-", suffix=".pkl")
            os.close(handle)
            self.context_file = Context.of(self).save(Path(name))
            atexit.register(self.close)
        main_pid = os.getpid()
        jobs = enumerate(job_overrides, initial_job_idx)
        return Parallel(**joblib_settings(self.joblib))(
            delayed(run_local_job)(self.context_file, number, list(overrides), main_pid)
            for number, overrides in jobs
        )

    def close(self) -> None:
        if self.context_file is not None:
            self.context_file.unlink(missing_ok=True)
