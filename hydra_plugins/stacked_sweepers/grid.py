"""SeedStackingSweeper: BasicSweeper's jobs, with the repetitions of a configuration merged."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


def expand(overrides: list[Override]) -> list[list[str]]:
    """Every job's overrides, as BasicSweeper builds them: the cartesian product of the values
    of each key, keys in the order first given (a key given twice keeps the later values)."""
    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(
                f"{SeedStackingSweeper.__name__} does not support sweep type : "
                f"{override.value_type.name}"
            )
    return [list(job) for job in itertools.product(*choices.values())]


def _bare_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def stack(jobs: list[list[str]], seed_key: str, stack_key: str) -> list[list[str]]:
    """Merge the jobs that differ only in `seed_key`: one job per configuration, in the order
    of its first job, with `++<stack_key>=[s1,s2,...]` where the seed override stood."""
    groups: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for job in jobs:
        at = next(i for i, override in enumerate(job) if _bare_key(override) == seed_key)
        rest = tuple(job[:at] + job[at + 1 :])
        groups.setdefault((at, rest), []).append(job[at].split("=", 1)[1])
    return [
        [*rest[:at], f"++{stack_key}=[{','.join(seeds)}]", *rest[at:]]
        for (at, rest), seeds in groups.items()
    ]


def seed_is_swept(overrides: list[Override], seed_key: str) -> bool:
    """Whether the last override of `seed_key` sweeps more than one value."""
    found = [o for o in overrides if o.key_or_group == seed_key]
    if not found or not found[-1].is_discrete_sweep():
        return False
    return len(list(found[-1].sweep_string_iterator())) > 1


class SeedStackingSweeper(Sweeper):
    """BasicSweeper's sweep with one job per configuration instead of one per seed."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        stack_seeds: Any = True,
        seed_key: str = "seed",
        stack_key: str = "seeds",
    ) -> None:
        if not isinstance(stack_seeds, bool):
            raise HydraException(
                f"hydra.sweeper.stack_seeds={stack_seeds!r} is not allowed: true or false"
            )
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.stack_seeds, self.seed_key, self.stack_key = stack_seeds, seed_key, stack_key
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def job_batches(self, arguments: list[str]) -> list[list[list[str]]]:
        """The jobs' overrides, in batches of at most `max_batch_size` jobs."""
        loader = self.hydra_context.config_loader if self.hydra_context else None
        parser = OverridesParser.create(config_loader=loader)
        given = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        overrides = parser.parse_overrides(given)
        jobs = expand(overrides)
        if self.stack_seeds and seed_is_swept(overrides, self.seed_key):
            jobs = stack(jobs, self.seed_key, self.stack_key)
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        return [jobs[i : i + size] for i in range(0, len(jobs), max(size, 1))]

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        assert self.config is not None and self.launcher is not None
        batches = self.job_batches(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, first_job = [], 0
        for batch in batches:
            self.validate_batch_is_legal(batch)  # composes every job: fails before any runs
            results = self.launcher.launch(batch, initial_job_idx=first_job)
            for result in results:
                _ = result.return_value  # raises if the job raised
            first_job += len(batch)
            returns.append(results)
        return returns
