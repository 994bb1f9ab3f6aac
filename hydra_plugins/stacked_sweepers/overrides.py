"""What both sweepers do with overrides: parse, expand a grid, group a configuration's seeds."""

from __future__ import annotations

import itertools

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.types import HydraContext


def parse(
    params: dict[str, str] | None, arguments: list[str], context: HydraContext | None = None
) -> list[Override]:
    """`hydra.sweeper.params` then the command line's overrides (later ones win)."""
    loader = context.config_loader if context else None
    given = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    return OverridesParser.create(config_loader=loader).parse_overrides(given)


def bare_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


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
                f"a grid sweep does not support sweep type {override.value_type.name} "
                f"({override.input_line}); hparams_search=bayes searches intervals"
            )
    return [list(job) for job in itertools.product(*choices.values())]


def seeds_override(stack_key: str, seeds: list[str]) -> str:
    """The override that hands a job its stack of seeds."""
    return f"++{stack_key}=[{','.join(seeds)}]"


def stack(jobs: list[list[str]], seed_key: str, stack_key: str) -> list[list[str]]:
    """Merge the jobs that differ only in `seed_key`: one job per configuration, in the order
    of its first job, with `++<stack_key>=[s1,s2,...]` where the seed override stood."""
    groups: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for job in jobs:
        at = next(i for i, override in enumerate(job) if bare_key(override) == seed_key)
        rest = tuple(job[:at] + job[at + 1 :])
        groups.setdefault((at, rest), []).append(job[at].split("=", 1)[1])
    return [
        [*rest[:at], seeds_override(stack_key, seeds), *rest[at:]]
        for (at, rest), seeds in groups.items()
    ]


def swept_seeds(overrides: list[Override], seed_key: str) -> list[str] | None:
    """The values of the last override of `seed_key` when it sweeps a list or range, else None."""
    found = [o for o in overrides if o.key_or_group == seed_key]
    if not found or not found[-1].is_discrete_sweep():
        return None
    return list(found[-1].sweep_string_iterator())
