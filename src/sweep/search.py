"""The Bayesian search (conf/hparams_search/bayes.yaml, Hydra's Optuna sweeper): its space
checked before the first trial, and resume into the folder of the same search.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.config import ConfigError, require_int

_ABSENT = object()


def search_space(config: DictConfig) -> dict[str, tuple[str, Override]]:
    """The swept parameters, parsed as the Optuna sweeper does: `key -> (name, override)`.

    `hydra.sweeper.params` first, then the command line's overrides, which win; a fixed value
    on the command line takes its key out of the space. `name` is where the entry was written.
    Raises ConfigError for an entry Hydra cannot parse.
    """
    params = config.hydra.sweeper.get("params") or {}
    entries = [(f"hydra.sweeper.params.{k}", f"{k}={v}") for k, v in params.items()]
    entries += [(text.split("=", 1)[0], text) for text in config.hydra.overrides.task]
    parser = OverridesParser.create()
    space = {}
    for name, text in entries:
        try:
            override = parser.parse_override(text)
        except Exception as error:
            reason = str(error).strip().splitlines()[0]
            raise ConfigError(
                name, text.split("=", 1)[-1], f"a sweep Hydra parses ({reason})"
            ) from None
        space[override.get_key_element()] = (name, override)
    return {key: entry for key, entry in space.items() if entry[1].is_sweep_override()}


def check_search_space(config: DictConfig) -> None:
    """Refuse a search that cannot run as meant, naming the key (raises ConfigError)."""
    require_int("hydra.sweeper.n_trials", config.hydra.sweeper.n_trials, minimum=1)
    require_int("hydra.sweeper.n_jobs", config.hydra.sweeper.n_jobs, minimum=1)
    for key, (name, override) in search_space(config).items():
        text = override.input_line.split("=", 1)[-1]
        found = OmegaConf.select(config, key, default=_ABSENT, throw_on_resolution_failure=False)
        if key.startswith(("hydra.", "+", "~")) or found is _ABSENT:
            raise ConfigError(name, text, f"a key of the training config (there is no {key})")
        if override.is_interval_sweep():
            interval = override.value()
            log = "log" in interval.tags
            if not (interval.start < interval.end and (interval.start > 0 or not log)):
                bounds = "0 < min < max" if log else "min < max"
                raise ConfigError(name, text, f"an interval with {bounds}")
        else:  # choice(...) or range(...)
            values = list(override.sweep_iterator())
            if not values:
                raise ConfigError(name, text, "a non-empty list of choices")
            if not all(isinstance(v, (str, int, float, bool, type(None))) for v in values):
                raise ConfigError(name, text, "choices that are numbers, strings or booleans")


def _settings(config: DictConfig) -> dict[str, Any]:
    """What decides which trials a search proposes: the sweeper (but n_trials) and overrides."""
    sweeper = OmegaConf.to_container(config.hydra.sweeper)
    sweeper.pop("n_trials", None)
    return {**sweeper, "command line": sorted(config.hydra.overrides.task)}


def check_resume(config: DictConfig) -> None:
    """Rerun into its own folder, a search replays: its seeded sampler proposes the same trials,
    and src.train reads back the trials that finished instead of training them again. Refuse a
    rerun that would not propose the same trials (raises ConfigError)."""
    previous = Path(config.hydra.sweep.dir) / "multirun.yaml"
    if not previous.exists():
        return
    before, now = _settings(OmegaConf.load(previous)), _settings(config)
    changed = [k for k in {**before, **now} if before.get(k) != now.get(k)]
    reason = None
    if changed:
        reason = f"this search differs from the one there in: {', '.join(changed)}"
    elif config.hydra.sweeper.storage is not None:
        reason = "a search with a storage resumes from it, into a new folder"
    elif config.hydra.sweeper.sampler.get("seed") is None:
        reason = "only a seeded sampler proposes the same trials again"
    if reason:
        raise ConfigError("hydra.sweep.dir", str(previous.parent), f"a new folder ({reason})")


def is_log_scale(override: Override) -> bool:
    return override.is_interval_sweep() and "log" in override.value().tags


class StartSearch(Callback):
    """Before the Optuna sweeper starts: check its space (one line and exit 2 if bad), and
    save the sweep's config as <sweep dir>/multirun.yaml, as Hydra's basic sweeper does."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_search_space(config)
            check_resume(config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
