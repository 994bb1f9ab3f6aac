"""conf/autodiff/train.yaml's keys, defaults and allowed values: a dataclass per section, whose
fields are `setting(default, check)` as in src/run/schema.py (typed Any, nodes left open: see
there why). `AutodiffConf` holds them all; it is Hydra's `autodiff_schema`, named in the yaml's
defaults. `check_config` in train.py loops over the fields.
"""

from dataclasses import dataclass, field, is_dataclass
from functools import partial
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.autodiff.nn import ACTIVATIONS, INITIALIZERS
from src.autodiff.schedules import SCHEDULES
from src.errors import INT64_MAX, ConfigError, require_int, require_number, require_seed
from src.run.schema import one_of, positive_int, setting, settings

positive = partial(require_number, positive=True)


def _dims(key: str, value: Any) -> None:
    if value not in (1, 3) or isinstance(value, bool):
        raise ConfigError(key, value, "1 or 3")


def _widths(key: str, value: Any) -> None:
    if not isinstance(value, (list, ListConfig)):
        raise ConfigError(key, value, "a list of integers >= 1")
    for i, width in enumerate(value):
        positive_int(f"{key}[{i}]", width)


def _fraction(key: str, value: Any, upper_open: bool = False) -> None:
    """A number in (0, 1] (or (0, 1) when upper_open)."""
    positive(key, value)
    if value > 1 or (upper_open and value == 1):
        raise ConfigError(key, value, "a number in (0, 1)" if upper_open else "a number in (0, 1]")


def _batch_size(key: str, value: Any) -> None:
    if value is not None:  # null: the full batch
        positive_int(key, value)


def _name(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, value, "a non-empty string")


def _folder(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(key, value, "a folder path or null")


@dataclass
class DataConf:
    """The course's data (data.py); a 3-D noise must be > 0 (check_config)."""

    dims: Any = setting(1, _dims)
    n_samples: Any = setting(300, partial(require_int, minimum=10, maximum=INT64_MAX))
    noise: Any = setting(0.5, partial(require_number, minimum=0.0))
    seed: Any = setting(42, require_seed)


@dataclass
class ModelConf:
    hidden: Any = setting([8], _widths)
    activation: Any = setting("relu", one_of(ACTIVATIONS))
    output_activation: Any = setting("identity", one_of(ACTIVATIONS))
    initializer: Any = setting("normal", one_of(INITIALIZERS))
    init_std: Any = setting(0.1, positive)


@dataclass
class TrainConf:
    epochs: Any = setting(200, positive_int)
    lr: Any = setting(2e-3, positive)
    batch_size: Any = setting(None, _batch_size)
    loss: Any = setting("sum", one_of(("sum", "mean")))


@dataclass
class ScheduleConf:
    """schedules.py's; all but `name` are the schedules' own arguments. window_end must be
    > window_start (check_config)."""

    name: Any = setting("constant", one_of(SCHEDULES))
    gamma: Any = setting(0.5, _fraction)
    step_size: Any = setting(1000, positive_int)
    window_start: Any = setting(75, partial(require_int, minimum=1, maximum=INT64_MAX - 1))
    window_end: Any = setting(125)
    smoothing: Any = setting(10, positive_int)
    gain: Any = setting(0.01, partial(_fraction, upper_open=True))
    target_decay: Any = setting(1.0, _fraction)
    min_factor: Any = setting(0.1, _fraction)
    max_factor: Any = setting(10.0, partial(require_number, minimum=1.0))


@dataclass
class WandbConf:
    project: Any = setting("autodiff", _name)
    mode: Any = setting("offline", one_of(("offline", "online", "disabled")))


@dataclass
class AutodiffConf:
    seed: Any = setting(0, require_seed)
    backend: Any = setting("var", one_of(("var", "matrix")))
    data: DataConf = field(default_factory=DataConf)
    model: ModelConf = field(default_factory=ModelConf)
    train: TrainConf = field(default_factory=TrainConf)
    schedule: ScheduleConf = field(default_factory=ScheduleConf)
    logger: Any = setting("wandb", one_of(("wandb", "csv", "none")))
    wandb: WandbConf = field(default_factory=WandbConf)
    print_every: Any = setting(10, partial(require_int, minimum=0, maximum=INT64_MAX))
    output_dir: Any = setting("${hydra:runtime.output_dir}", _folder)


SECTIONS = {key: f.type for key, f in settings(AutodiffConf).items() if is_dataclass(f.type)}


def check_keys(cfg: DictConfig) -> None:
    """Refuse a key no code reads (added with +key=value), and a removed one."""
    for section, schema in {"": AutodiffConf, **SECTIONS}.items():
        node, known = cfg.get(section) if section else cfg, list(settings(schema))
        if not isinstance(node, DictConfig):
            raise ConfigError(section, node, f"a config group's settings ({', '.join(known)})")
        prefix = f"{section}." if section else ""
        for key in node:
            if key not in known and not (section == "" and key == "hydra"):  # Hydra's own part
                where = f"a key of {section}" if section else "a key of the config"
                raise ConfigError(f"{prefix}{key}", node[key], f"{where}: {', '.join(known)}")
        for key in known:
            if key not in node:
                raise ConfigError(f"{prefix}{key}", None, "a value: the key cannot be removed")


def check_values(cfg: DictConfig) -> None:
    """Refuse each value its field's check refuses, and the combinations that cannot run."""
    if cfg.data.dims == 3:  # the 3-D data's noise is the variance of x
        require_number("data.noise", cfg.data.noise, positive=True)
    for section, schema in {"": AutodiffConf, **SECTIONS}.items():
        node, prefix = (cfg[section], f"{section}.") if section else (cfg, "")
        for key, spec in settings(schema).items():
            if spec.metadata.get("check"):  # a section's own field has none
                spec.metadata["check"](prefix + key, node[key])
    start = cfg.schedule.window_start
    require_int("schedule.window_end", cfg.schedule.window_end, start + 1, INT64_MAX)


_schema = OmegaConf.structured(AutodiffConf, flags={"struct": False})
for _section in SECTIONS:
    OmegaConf.set_struct(_schema[_section], False)  # open too (structured nodes are closed)
ConfigStore.instance().store(name="autodiff_schema", node=_schema)
