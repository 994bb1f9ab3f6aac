"""`hydra/launcher=slurm` (and `pbs`, `sge`, `lsf`): the sweep's jobs run by Dask workers that
dask-jobqueue submits as batch jobs (src/sweep/cluster.py)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf


class JobqueueLauncher(Launcher):
    hydra_context: HydraContext | None = None
    task_function: TaskFunction | None = None
    config: DictConfig | None = None
    sweep: Any = None  # the sweep's cluster, started at its first job: a search's trials share it

    def __init__(self, **params: Any) -> None:
        self.params = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in params.items()
        }

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
        """Submit jobs without waiting for them (a search starts a trial as one ends)."""
        self._sweep().start([list(o) for o in job_overrides], initial_job_idx)

    def wait(self, every: bool = False) -> dict[int, JobReturn]:
        """The jobs that ended, by number, once one has (every=True: once all have)."""
        assert self.hydra_context is not None
        return self._sweep().wait(self.hydra_context.config_loader, self.config, every)

    def _sweep(self) -> Any:
        from src.sweep import lifetime
        from src.sweep.cluster import ClusterSweep
        from src.sweep.worker import Context

        assert self.config is not None and self.hydra_context is not None
        if self.sweep is None:
            # The app's own bookkeeping where its config names it; Hydra's launchers keep none.
            ended, lost = (self.params[k] for k in ("job_ended", "job_lost"))
            ended = get_method(ended) if ended else print_nothing
            lost = get_method(lost) if lost else failed_return
            self.sweep = ClusterSweep(self.params, Context.of(self), ended, lost)
            lifetime.on_stop(self.sweep.cancel)
            weakref.finalize(self, self.sweep.close)  # at exit, or once Hydra drops this
        return self.sweep

    def close(self) -> None:
        """The sweep launches no more jobs: the workers' batch jobs end now."""
        if self.sweep is not None:
            self.sweep.close()


def print_nothing(result: JobReturn) -> None:
    """Hydra's launchers say nothing as a job ends."""


def failed_return(config_loader, config, overrides: list[str], number: int, error: str) -> Any:
    """A JobReturn of a job that no worker finished, for any Hydra app: status FAILED."""
    from hydra.core.utils import JobStatus

    job = config_loader.load_sweep_config(config, list(overrides))
    return JobReturn(
        overrides=list(overrides),
        cfg=OmegaConf.masked_copy(job, [k for k in job if k != "hydra"]),
        hydra_cfg=OmegaConf.create({"hydra": job.hydra}),
        status=JobStatus.FAILED,
        _return_value=RuntimeError(error),
    )
