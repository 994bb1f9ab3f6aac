"""`hydra/launcher=slurm`: the sweep's jobs on a SLURM cluster, run by a pool of long-lived
worker tasks (src/sweep/slurm.py), each submitted through submitit."""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class SlurmPoolLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in params.items()
        }
        self.pool = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        self.start(job_overrides, initial_job_idx)
        results = self.wait(every=True)
        return [results[n] for n in range(initial_job_idx, initial_job_idx + len(job_overrides))]

    def start(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> None:
        """Queue jobs without waiting for them (a search starts a trial as one ends)."""
        self._pool().start([list(o) for o in job_overrides], initial_job_idx)

    def wait(self, every: bool = False) -> dict[int, JobReturn]:
        """The jobs that ended, by number, once one has (every=True: once all have)."""
        assert self.hydra_context is not None
        return self._pool().wait(self.hydra_context.config_loader, self.config, every)

    def _pool(self) -> Any:
        """The sweep's pool of workers, made at its first job: a search's trials share it."""
        from src.sweep import lifetime
        from src.sweep.slurm import Pool, Worker

        assert self.config is not None and self.hydra_context is not None
        if self.pool is None:
            setup_globals()
            sweep_dir = Path(self.config.hydra.sweep.dir)
            state = Singleton.get_state()
            worker = Worker(sweep_dir, self.hydra_context, self.config, self.task_function, state)
            self.pool = Pool(sweep_dir, self.params, worker)
            lifetime.on_stop(self.pool.cancel)
            atexit.register(self.pool.close)
        return self.pool

    def close(self) -> None:
        """The sweep launches no more jobs: idle workers end now."""
        if self.pool is not None:
            self.pool.close()
