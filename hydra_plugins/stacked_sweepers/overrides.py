"""What both sweepers do with overrides: parse, expand a grid, group a configuration's seeds."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, HydraException
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from src.errors import ConfigError
from src.folders import name_max
from src.sweep.progress import override_key


def parse(
    params: dict[str, str] | None, arguments: list[str], context: HydraContext | None = None
) -> list[Override]:
    """`hydra.sweeper.params` then the command line's overrides (later ones win)."""
    loader = context.config_loader if context else None
    given = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    return OverridesParser.create(config_loader=loader).parse_overrides(given)


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
        at = next(i for i, override in enumerate(job) if override_key(override) == seed_key)
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


def config_groups(loader: Any, parent: str = "") -> set[str]:
    """Every config group Hydra knows (`data`, `hydra/launcher`, ...)."""
    groups = set()
    for name in loader.list_groups(parent):
        group = f"{parent}/{name}" if parent else name
        groups |= {group} | config_groups(loader, group)
    return groups


def apply_override(cfg: DictConfig, override: Override) -> None:
    """Apply a value override to a composed config as Hydra does when it composes a job
    (the same rules for key=, +key=, ++key= and ~key); raises ConfigCompositionException."""
    key, value = override.key_or_group, override.value()
    try:
        if override.is_delete():
            found = OmegaConf.select(cfg, key, throw_on_missing=False)
            if found is None or (value is not None and value != found):
                raise ConfigCompositionException(f"Could not delete {key} from the config")
            parent, _, leaf = key.rpartition(".")
            with open_dict(cfg):
                del (OmegaConf.select(cfg, parent) if parent else cfg)[leaf]
        elif override.is_add():
            if OmegaConf.select(cfg, key, throw_on_missing=False) is not None and not isinstance(
                value, (dict, list)
            ):
                raise ConfigCompositionException(
                    f"Could not append to config. An item is already at '{key}'"
                )
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        elif override.is_force_add():
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        else:
            try:
                OmegaConf.update(cfg, key, value, merge=True)
            except (ConfigAttributeError, ConfigKeyError) as error:
                raise ConfigCompositionException(
                    f"Could not override '{key}'. To append to your config use "
                    f"+{override.input_line}"
                ) from error
    except OmegaConfBaseException as error:
        raise ConfigCompositionException(f"Error merging override {override.input_line}") from error


def _entangled(overrides: list[Override]) -> bool:
    """Whether two of a job's value overrides touch one node (one key inside another's)."""
    keys = sorted(o.key_or_group for o in overrides)
    return any(b == a or b.startswith(a + ".") for a, b in zip(keys, keys[1:]))


def keeps_shape(cfg: DictConfig, override: Override) -> bool:
    """Whether applying the override leaves every key of cfg in place: a new scalar for an
    existing scalar (so later checks on the same config see what a fresh copy would)."""
    if override.is_add() or override.is_delete() or override.is_force_add():
        return False
    value = override.value()
    node = OmegaConf.select(cfg, override.key_or_group, default=None, throw_on_missing=False)
    scalar = not isinstance(value, (dict, list))
    return node is not None and not OmegaConf.is_config(node) and scalar


def check_jobs(loader: Any, master: DictConfig, jobs: list[list[str]]) -> None:
    """Raise ConfigCompositionException for the first job Hydra could not compose, as
    Sweeper.validate_batch_is_legal does, without composing each job: Hydra composes one
    config per combination of config-group choices, and each distinct value override is
    applied once to a copy of it (a job whose value overrides touch one node, all together).
    On a grid this is a compose per group choice instead of one per job."""
    parser = OverridesParser.create(config_loader=loader)
    parsed = {text: parser.parse_override(text) for text in {o for job in jobs for o in job}}
    groups = config_groups(loader)
    is_group = {
        text: o.key_or_group in groups or o.package is not None for text, o in parsed.items()
    }
    combos: dict[tuple[str, ...], list[list[Override]]] = {}
    for job in jobs:
        choice = tuple(o for o in job if is_group[o])
        combos.setdefault(choice, []).append([parsed[o] for o in job if not is_group[o]])
    for choice, value_jobs in combos.items():
        composed = loader.load_sweep_config(master_config=master, sweep_overrides=list(choice))
        shared = copy.deepcopy(composed)  # takes the overrides that leave its shape alone
        checked: set[str] = set()
        for overrides in value_jobs:
            if _entangled(overrides):
                cfg = copy.deepcopy(composed)
                for override in overrides:
                    apply_override(cfg, override)
                continue
            for override in overrides:
                if override.input_line not in checked:
                    keeps = keeps_shape(shared, override)
                    apply_override(shared if keeps else copy.deepcopy(composed), override)
                    checked.add(override.input_line)


def folder_name(job: list[str], naming: DictConfig) -> str:
    """The job's folder name as Hydra writes `hydra.job.override_dirname`: its overrides but
    the excluded keys, sorted, joined (`naming`: hydra.job.config.override_dirname)."""
    parsed = OverridesParser.create().parse_overrides(job)
    lines = sorted(o.input_line for o in parsed if o.key_or_group not in naming.exclude_keys)
    return naming.item_sep.join(lines).replace("=", naming.kv_sep)


def check_folder_names(config: DictConfig, jobs: list[list[str]]) -> None:
    """Refuse (ConfigError) a grid whose job folder (named by its overrides, see folder_name)
    would have a name longer than the sweep folder's file system holds."""
    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"]
    if "override_dirname" not in str(subdir):
        return
    limit = name_max(Path(config.hydra.sweep.dir))
    naming = config.hydra.job.config.override_dirname
    for job in jobs:
        name = folder_name(job, naming)
        if len(name.encode()) > limit:
            raise ConfigError(
                "hydra.sweep.subdir",
                f"{name[:40]}...",
                f"job folder names of at most {limit} bytes, the file system's limit (this "
                f"job's, made of its overrides, has {len(name.encode())}): sweep fewer or "
                "shorter values, or set long ones in a config file (experiment=...)",
            )
