"""SeedStackingSweeper: BasicSweeper's jobs, with the repetitions of a configuration merged."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from src.errors import ConfigError, exit_on_config_error
from src.run.schema import SEED_KEY, STACK_KEY
from src.sweep.lifetime import stop_on_full_disk
from src.sweep.preflight import (
    Plan,
    check_grid_values,
    check_stacking,
    mark_unfinished,
    sweep_grids,
)

from .launching import LaunchingSweeper, job_value
from .overrides import check_folder_names, check_jobs, expand, parse, stack


class SeedStackingSweeper(LaunchingSweeper):
    """BasicSweeper's sweep with one job per configuration instead of one per seed."""

    kind = "grid"

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        grids: Any = None,
        stack_seeds: Any = True,
        seed_key: str = SEED_KEY,
        stack_key: str = STACK_KEY,
        kind: str = "grid",
    ) -> None:
        super().__init__(params, seed_key, stack_key, kind)
        self.max_batch_size, self.grids, self.stack_seeds = max_batch_size, grids, stack_seeds

    def plan(self, arguments: list[str]) -> Plan:
        """The grid of `params` and the command line, or the union of the grids of `grids` (a
        job in two runs once): its runs, the keys it sweeps, and the jobs that run them."""
        if not isinstance(self.stack_seeds, bool):
            raise ConfigError("hydra.sweeper.stack_seeds", self.stack_seeds, "true or false")
        runs: dict[frozenset[str], list[str]] = {}
        swept: dict[str, None] = {}
        for grid in sweep_grids(self.grids) or [{}]:
            overrides = parse({**self.params, **grid}, arguments, self.hydra_context)
            check_grid_values(overrides)
            swept.update((o.get_key_element(), None) for o in overrides if o.is_sweep_override())
            for run in expand(overrides):
                runs.setdefault(frozenset(run), run)
        values: dict[str, set[str]] = {}  # keys that differ between grids are swept too
        for key, _, value in (o.partition("=") for run in runs.values() for o in run):
            values.setdefault(key, set()).add(value)
        swept.update((key, None) for key, found in values.items() if len(found) > 1)
        jobs = list(runs.values())
        seeds = values.get(self.seed_key, set())
        if self.stack_seeds and len(seeds) > 1:  # one job per configuration with all its seeds
            jobs = stack(jobs, self.seed_key, self.stack_key)
        return Plan(self.kind, self.seed_key, self.stack_key, len(runs), list(swept), jobs)

    def batches(self, jobs: list[list[str]]) -> list[list[list[str]]]:
        """The jobs in batches of at most `max_batch_size`, as BasicSweeper launches them."""
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        return [jobs[i : i + size] for i in range(0, len(jobs), max(size, 1))]

    def job_batches(self, arguments: list[str]) -> list[list[list[str]]]:
        return self.batches(self.plan(arguments).jobs)

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        exit_on_config_error(self.check)()
        plan = exit_on_config_error(self.plan)(arguments)
        stacks_seeds = self.stack_seeds and self.seed_key in plan.swept
        exit_on_config_error(check_stacking)(self.config, stacks_seeds)
        self.refuse_uncomposable(plan.jobs)
        sweep_dir = self.open(plan)
        returns, first_job = [], 0
        with stop_on_full_disk(sweep_dir, mark_unfinished):
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            for batch in self.batches(plan.jobs):
                results = self.launcher.launch(batch, initial_job_idx=first_job)
                for result in results:
                    job_value(result)  # raises if the job raised
                first_job += len(batch)
                returns.append(results)
        self.close_launcher()
        return returns

    def refuse_uncomposable(self, jobs: list[list[str]]) -> None:
        """Every job composes and fits its folder name, or the sweep ends here in one line."""
        try:
            check_jobs(self.hydra_context.config_loader, self.config, jobs)
            check_folder_names(self.config, jobs)
        except ConfigCompositionException as error:
            reason = " ".join(str(error).split())
            cause = f" ({' '.join(str(error.__cause__).split())})" if error.__cause__ else ""
            print(f"error: {reason}{cause}", file=sys.stderr)
            sys.exit(2)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
