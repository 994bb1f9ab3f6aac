"""What both sweepers are: a Sweeper that hands its jobs to the configured launcher."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from src.run.files import no_space

from .composing import CachedComposition


class LaunchingSweeper(Sweeper):
    """Keeps Hydra's context and the sweep's config, and the launcher they configure."""

    def __init__(self, params: dict[str, str] | None, seed_key: str, stack_key: str) -> None:
        self.params = params or {}  # sweeps given in the config, as BasicSweeper's
        self.seed_key, self.stack_key = seed_key, stack_key
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        # The launcher composes each job's config: once per kind of job (see composing.py).
        loader = CachedComposition(hydra_context.config_loader)
        hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def close_launcher(self) -> None:
        """The sweep launches nothing more: a launcher that keeps workers (SLURM) lets them go."""
        close = getattr(self.launcher, "close", None)
        if close is not None:
            close()


def job_value(result: JobReturn) -> Any:
    """What the job returned; raises what it raised, and for a full disk without Hydra's
    "Error executing job" line on stderr (the sweep's own one line says it)."""
    if result.status == JobStatus.FAILED:
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                return result.return_value
            except Exception as error:
                if no_space(error):
                    raise
    return result.return_value
