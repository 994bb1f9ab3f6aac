"""What both sweepers are: a Sweeper that plans its sweep, opens its folder and hands its jobs
to the configured launcher."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from src.errors import ConfigError
from src.run.files import no_space
from src.sweep.preflight import Plan, check_settings, open_sweep

from .composing import CachedComposition


class LaunchingSweeper(Sweeper):
    """Keeps Hydra's context, the sweep's config and the launcher they configure."""

    kind = ""  # "grid" or "search": what its jobs and its report read in .sweep.json

    def __init__(self, params: Any, seed_key: str, stack_key: str, kind: str) -> None:
        self.params = params or {}  # sweeps given in the config, as BasicSweeper's
        self.seed_key, self.stack_key, self.given_kind = seed_key, stack_key, kind
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

    def check(self) -> None:
        """Refuse bad settings before anything is planned (raises ConfigError)."""
        if self.given_kind != self.kind:
            raise ConfigError("hydra.sweeper.kind", self.given_kind, f"{self.kind} (its sweeper's)")
        check_settings(self.config)

    def open(self, plan: Plan) -> Path:
        """The sweep's folder, made and locked, with its plan in .sweep.json (see open_sweep)."""
        return open_sweep(self.config, plan, type(self.launcher).__name__)

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
