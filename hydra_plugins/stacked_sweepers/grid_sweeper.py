"""SeedStackingSweeper: BasicSweeper's jobs, with the repetitions of a configuration merged."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.sweep.lifetime import stop_on_full_disk
from src.sweep.preflight import mark_unfinished, sweep_grids

from .launching import LaunchingSweeper, job_value
from .overrides import check_folder_names, check_jobs, expand, parse, stack, swept_seeds


class SeedStackingSweeper(LaunchingSweeper):
    """BasicSweeper's sweep with one job per configuration instead of one per seed."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        grids: Any = None,
        stack_seeds: Any = True,
        seed_key: str = "seed",
        stack_key: str = "seeds",
        kind: str = "grid",  # its jobs and report read it; checked by preflight.check_kind
    ) -> None:
        if not isinstance(stack_seeds, bool):
            raise HydraException(
                f"hydra.sweeper.stack_seeds={stack_seeds!r} is not allowed: true or false"
            )
        super().__init__(params, seed_key, stack_key)
        self.max_batch_size = max_batch_size
        self.stack_seeds = stack_seeds
        self.grids = sweep_grids(grids)

    def job_batches(self, arguments: list[str]) -> list[list[list[str]]]:
        """The jobs' overrides, in batches of at most `max_batch_size` jobs: the grid of `params`
        and the command line, or the union of the grids of `grids` (a job in two runs once)."""
        jobs: dict[frozenset[str], list[str]] = {}
        stacked = False
        for grid in self.grids or [{}]:
            overrides = parse({**self.params, **grid}, arguments, self.hydra_context)
            for job in expand(overrides):
                jobs.setdefault(frozenset(job), job)
            seeds = swept_seeds(overrides, self.seed_key)
            stacked |= self.stack_seeds and seeds is not None and len(seeds) > 1
        jobs = list(jobs.values())
        if stacked:
            jobs = stack(jobs, self.seed_key, self.stack_key)
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        return [jobs[i : i + size] for i in range(0, len(jobs), max(size, 1))]

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        assert self.config is not None and self.launcher is not None
        batches = self.job_batches(arguments)
        try:  # every job, before any runs
            check_jobs(self.hydra_context.config_loader, self.config, sum(batches, []))
            check_folder_names(self.config, sum(batches, []))
        except ConfigCompositionException as error:
            reason = " ".join(str(error).split())
            cause = f" ({' '.join(str(error.__cause__).split())})" if error.__cause__ else ""
            print(f"error: {reason}{cause}", file=sys.stderr)
            sys.exit(2)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        returns, first_job = [], 0
        with stop_on_full_disk(sweep_dir, mark_unfinished):
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            for batch in batches:
                results = self.launcher.launch(batch, initial_job_idx=first_job)
                for result in results:
                    job_value(result)  # raises if the job raised
                first_job += len(batch)
                returns.append(results)
        self.close_launcher()
        return returns
