"""The Bayesian search (hparams_search=bayes): its space, sampler, pruner and study storage.

The space is written in Hydra's override syntax; a swept `seed` is each trial's stack of seeds,
not a dimension. Optuna is imported only where used, so a grid sweep never pays for it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from src.errors import INT64_MAX, ConfigError, require_choice, require_int, require_seed
from src.run.schema import SEED_KEY, STACK_KEY

STUDY_FILE = "study.journal"  # in the sweep folder, unless hydra.sweeper.storage names another
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "gp": "GPSampler", "qmc": "QMCSampler"}
PRUNERS = {
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "hyperband": "HyperbandPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "threshold": "ThresholdPruner",
    "wilcoxon": "WilcoxonPruner",
    "nop": "NopPruner",
}
DIRECTIONS = ("minimize", "maximize")
_ABSENT = object()


def is_search(sweeper: DictConfig | dict | None) -> bool:
    """Whether a sweep's `hydra.sweeper` settings (or its .sweep.json) are a search's."""
    return sweeper is not None and sweeper.get("kind") == "search"


def search_space(config: DictConfig) -> dict[str, tuple[str, Override]]:
    """The swept keys: `key -> (where written, override)`, the command line's winning."""
    params = config.hydra.sweeper.get("params") or {}
    entries = [(f"hydra.sweeper.params.{k}", f"{k}={v}") for k, v in params.items()]
    entries += [(text.split("=", 1)[0], text) for text in config.hydra.overrides.task]
    parser = OverridesParser.create()
    space = {}
    for name, text in entries:
        try:
            override = parser.parse_override(text)
        except Exception as error:
            allowed = f"a sweep Hydra parses ({_first_line(error)})"
            raise ConfigError(name, text.split("=", 1)[-1], allowed) from None
        space[override.get_key_element()] = (name, override)
    return {key: entry for key, entry in space.items() if entry[1].is_sweep_override()}


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def distribution(override: Override) -> Any:
    """The Optuna distribution of a swept override (`range(a, b)` is a..b-1, as in Hydra)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if override.is_interval_sweep():
        interval = override.value()
        log = "log" in interval.tags
        if "int" in interval.tags:
            return IntDistribution(int(interval.start), int(interval.end), log=log)
        return FloatDistribution(float(interval.start), float(interval.end), log=log)
    values = list(override.sweep_iterator())
    if override.is_range_sweep() and not override.value().shuffle and len(values) > 1:
        start, step = values[0], values[1] - values[0]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and step > 0:
            return IntDistribution(start, values[-1], step=step)
    return CategoricalDistribution(values)


def override_value(value: Any) -> str:
    """A trial's parameter value written back as an override's value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and not value.replace("_", "").replace(".", "").isalnum():
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def _check_seeds(name: str, text: str, override: Override) -> None:
    if not override.is_discrete_sweep():
        raise ConfigError(name, text, "a list or range of seeds")
    seeds = list(override.sweep_iterator())
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(name, text, "a list of integer seeds")
    if len(set(seeds)) < len(seeds):
        raise ConfigError(name, text, "distinct seeds")
    for seed in seeds:
        require_seed(name, seed)


def check_search_space(config: DictConfig) -> None:
    """Refuse a search that cannot run as meant, naming the key (raises ConfigError)."""
    sweeper = config.hydra.sweeper
    require_int("hydra.sweeper.n_trials", sweeper.n_trials, 1, INT64_MAX)
    require_int("hydra.sweeper.n_jobs", sweeper.n_jobs, 1, INT64_MAX)
    require_choice("hydra.sweeper.direction", sweeper.direction, DIRECTIONS)
    make_sampler(sweeper.sampler)
    make_pruner(sweeper.pruner, sweeper.pruner_args)
    seed_key = sweeper.get("seed_key", SEED_KEY)
    space = search_space(config)
    for key, (name, override) in space.items():
        text = override.input_line.split("=", 1)[-1]
        if key == seed_key:
            _check_seeds(name, text, override)
            continue
        found = OmegaConf.select(config, key, default=_ABSENT, throw_on_resolution_failure=False)
        if key.startswith(("hydra.", "+", "~")) or found is _ABSENT:
            raise ConfigError(name, text, f"a key of the training config (there is no {key})")
        if override.is_interval_sweep():
            interval = override.value()
            log = "log" in interval.tags
            if not (interval.start < interval.end and (interval.start > 0 or not log)):
                bounds = "0 < min < max" if log else "min < max"
                raise ConfigError(name, text, f"an interval with {bounds}")
        else:  # choice(...), range(...) or a list
            values = list(override.sweep_iterator())
            if not values:
                raise ConfigError(name, text, "a non-empty list of choices")
            if not all(isinstance(v, (str, int, float, bool, type(None))) for v in values):
                raise ConfigError(name, text, "choices that are numbers, strings or booleans")
    if not [k for k in space if k != seed_key]:
        raise ConfigError("hydra.sweeper.params", "{}", "at least one swept key to search")
    if sweeper.storage is not None and "://" in str(sweeper.storage):
        # a URL that opens; last, as opening it may make its file and folder
        study_storage(sweeper.storage, Path(config.hydra.sweep.dir))


def _plain(conf: Any) -> dict:
    return OmegaConf.to_container(conf) if isinstance(conf, DictConfig) else dict(conf or {})


def make_sampler(conf: Any) -> Any:
    """The Optuna sampler `sampler.name` names, given the other settings its constructor takes."""
    import optuna

    settings = _plain(conf)
    name = settings.pop("name")
    require_choice("hydra.sweeper.sampler.name", name, SAMPLERS)
    cls = getattr(optuna.samplers, SAMPLERS[name])
    taken = inspect.signature(cls).parameters
    args = {k: v for k, v in settings.items() if k in taken}
    if settings.get(SEED_KEY) is not None:  # every sampler's seed: numpy's RandomState takes it
        require_seed(f"hydra.sweeper.sampler.{SEED_KEY}", settings[SEED_KEY])
    try:
        return cls(**args)
    except (TypeError, ValueError) as error:
        allowed = f"settings {name} takes ({error})"
        raise ConfigError("hydra.sweeper.sampler", settings, allowed) from None


def make_pruner(name: str | None, args: Any = None) -> Any:
    """The Optuna pruner `hydra.sweeper.pruner` names (None: no pruning)."""
    if name is None:
        return None
    import optuna

    require_choice("hydra.sweeper.pruner", name, PRUNERS)
    args = _plain(args)
    try:
        return getattr(optuna.pruners, PRUNERS[name])(**args)
    except (TypeError, ValueError) as error:
        allowed = f"arguments {name} takes ({error})"
        raise ConfigError("hydra.sweeper.pruner_args", args, allowed) from None


def study_storage(storage: str | None, sweep_dir: Path) -> Any:
    """The study's journal file or storage URL, opened, or a ConfigError naming its key."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        journal = journal_file(storage, sweep_dir)
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        database = sqlite_file(str(storage))
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(str(storage))
    except Exception as error:
        allowed = f"an Optuna storage that opens ({_first_line(error)})"
        raise ConfigError("hydra.sweeper.storage", storage, allowed) from None


def journal_file(storage: str | None, sweep_dir: Path) -> Path | None:
    """`<sweep>/study.journal`, or the path storage names; None for a storage URL."""
    if storage is not None and "://" in str(storage):
        return None
    return Path(sweep_dir) / STUDY_FILE if storage is None else Path(storage)


def cut_torn_tail(journal: Path) -> Path | None:
    """Move a last line a crash left unfinished to a free `<journal>.torn-<n>` (returned): Optuna
    skips it when reading but appends after it, gluing the next line to it for good."""
    from optuna.storages.journal import JournalFileSymlinkLock

    if not journal.is_file():
        return None
    lock = JournalFileSymlinkLock(str(journal))  # Optuna's own: no writer appends meanwhile
    lock.acquire()
    try:
        with open(journal, "rb+") as file:
            data = file.read()
            if not data or data.endswith(b"\n"):
                return None
            end = data.rfind(b"\n") + 1  # 0: the only line is torn
            n = 1
            while (aside := journal.with_name(f"{journal.name}.torn-{n}")).exists():
                n += 1
            aside.write_bytes(data[end:])
            file.truncate(end)
    finally:
        lock.release()
    return aside


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (sqlite:///a.db); None for another database, memory or a URI."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def describe_space(distributions: dict[str, Any], seeds: list[int]) -> dict[str, str]:
    """What a study is a study of, kept on it: a rerun with another space is refused."""
    return {STACK_KEY: repr(list(seeds)), **{k: repr(d) for k, d in sorted(distributions.items())}}
