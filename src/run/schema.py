"""Each config group's keys, defaults and allowed values: `model`, `data` and `trainer` here,
each logger kind in src/run/loggers.py. A field is `setting(default, check)`, the check raising
a ConfigError; optimizers and data sets are registries with their own settings.

Each schema is also Hydra's `<group>_schema`, typed Any and open (struct off): else Hydra would
refuse `model.depth=abc` in a multi-line error of its own, and coerce `model.residual=yes`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import OmegaConf

from src.errors import (
    INT64_MAX,
    ConfigError,
    require_choice,
    require_float32,
    require_int,
    require_seed,
)

Check = Callable[[str, Any], None]


def setting(default: Any, check: Check | None = None) -> Any:
    """A schema field: its default and the check its values pass."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


def settings(schema: Any) -> dict[str, dataclasses.Field]:
    """A schema's fields by key, in their order."""
    return {f.name: f for f in dataclasses.fields(schema)}


def defaults(fields: Mapping[str, dataclasses.Field]) -> dict[str, Any]:
    return {
        key: f.default_factory() if f.default is dataclasses.MISSING else f.default
        for key, f in fields.items()
    }


# -- checks ------------------------------------------------------------------------------------

positive_int = partial(require_int, minimum=1, maximum=INT64_MAX)


def one_of(choices: Iterable[str] | str) -> Check:
    """A name among `choices`, or the registry at that dotted path (a module importing torch)."""

    def check(key: str, value: Any) -> None:
        require_choice(key, value, get_object(choices) if isinstance(choices, str) else choices)

    return check


def boolean(key: str, value: Any, null: bool = False) -> None:
    if not isinstance(value, bool) and not (null and value is None):
        raise ConfigError(key, value, "true, false or null" if null else "a boolean: true or false")


# Each hidden layer is a module of its own and a few kernel calls per step: depth 5,000 took
# 17 s to build and 3 s a step here, depth 100,000 would take hours before its first epoch.
MAX_DEPTH = 1000


def depth(key: str, value: Any) -> None:
    require_int(key, value, minimum=0)
    if value > MAX_DEPTH:
        raise ConfigError(
            key,
            value,
            f"an integer from 0 to {MAX_DEPTH} (each layer is a module and kernel calls of its "
            "own: depth 5000 takes 17 s to build and 3 s a training step)",
        )


# -- registries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Factory:
    """An optimizer, `target`(params, lr, **settings), or a data set's generator,
    `target`(n, noise, torch.Generator, **settings) -> (x (n, 2), y (n,))."""

    target: str  # its dotted path
    settings: dict[str, dataclasses.Field]  # its own
    state_copies: int = 0  # an optimizer's state tensors per parameter (Adam: 2), for memory

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return get_object(self.target)(*args, **kwargs)


OPTIMIZERS: dict[str, Factory] = {}
GENERATORS: dict[str, Factory] = {}


def register_optimizer(name: str, target: str, state_copies: int, **own: Any) -> None:
    """`model.optimizer=name`; `own`: its settings (`setting(...)`), keys of `model` for all."""
    OPTIMIZERS[name] = Factory(target, own, state_copies)
    store_schemas()


def register_generator(name: str, target: str, **own: Any) -> None:
    """`data.name=name`; `own`: its settings, keys of `data` when chosen. One with settings is
    also the option `data=name` (xor's values and its defaults); others have a conf/data/ yaml."""
    GENERATORS[name] = Factory(target, own)
    if own:
        node = {"defaults": ["xor", "_self_"], "name": name, **defaults(own)}
        ConfigStore.instance().store(group="data", name=name, node=node)


# -- the groups --------------------------------------------------------------------------------


@dataclass
class ModelConf:
    """src/run/model.py's MLPClassifier (and src/run/nets.py's MLP)."""

    depth: Any = setting(2, depth)
    width: Any = setting(10, positive_int)
    activation: Any = setting("tanh", one_of("src.run.nets.ACTIVATIONS"))
    lr: Any = setting(0.01, partial(require_float32, positive=True))
    optimizer: Any = setting("adam", one_of(OPTIMIZERS))
    residual: Any = setting(False, boolean)
    norm: Any = setting("none", one_of("src.run.nets.NORMS"))
    init: Any = setting("default", one_of("src.run.nets.INITS"))


@dataclass
class DataConf:
    """src/run/data.py's GeneratedDataModule; `name` one of GENERATORS."""

    name: Any = setting("xor", one_of(GENERATORS))
    n_train: Any = setting(2500, positive_int)
    n_val: Any = setting(500, positive_int)
    n_test: Any = setting(500, positive_int)
    noise: Any = setting(0.1, require_float32)
    batch_size: Any = setting(128, positive_int)
    seed: Any = setting(42, require_seed)


ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


@dataclass
class TrainerConf:
    """src/run/training.py's Lightning Trainer and torch threads."""

    max_epochs: Any = setting(25, positive_int)
    accelerator: Any = setting("cpu", one_of(ACCELERATORS))
    devices: Any = setting(1, positive_int)
    num_threads: Any = setting(1, positive_int)
    progress_bar: Any = setting(None, partial(boolean, null=True))


GROUPS = {"model": ModelConf, "data": DataConf, "trainer": TrainerConf}
# The run's seed, and the seeds a stacked run trains together (a sweep's seed_key and
# stack_key default to them; every other module reads these names).
SEED_KEY, STACK_KEY = "seed", "seeds"
# What draws a data set (make_splits' arguments, with its own settings): all but the batch size.
DATA_KEYS = tuple(key for key in settings(DataConf) if key != "batch_size")


def group_settings(data_set: Any) -> dict[str, dict[str, dataclasses.Field]]:
    """Each group's keys: every optimizer's settings in model's, data set `data_set`'s in data's."""
    model = settings(ModelConf)
    for optimizer in OPTIMIZERS.values():
        model |= optimizer.settings
    generator = GENERATORS.get(data_set) if isinstance(data_set, str) else None
    data = settings(DataConf) | (generator.settings if generator else {})
    return {"model": model, "data": data, "trainer": settings(TrainerConf)}


def own_settings(node: Mapping[str, Any], registry: Mapping[str, Any], selector: str) -> dict:
    """The values of the settings of the optimizer or data set `node[selector]` names."""
    return {key: node[key] for key in registry[node[selector]].settings}


def drawing_args(data: Mapping[str, Any]) -> dict[str, Any]:
    """make_splits' arguments from a run's `data`: DATA_KEYS, and its data set's own settings."""
    return {key: data[key] for key in DATA_KEYS} | own_settings(data, GENERATORS, "name")


def store_schemas() -> None:
    """Each group's schema as Hydra's `<group>_schema`, open (see above)."""
    for group, fields in group_settings(None).items():
        node = OmegaConf.structured(GROUPS[group], flags={"struct": False})
        node.merge_with(defaults(fields))
        ConfigStore.instance().store(group=group, name=f"{group}_schema", node=node)


register_optimizer("adam", "torch.optim.Adam", state_copies=2)
register_optimizer("sgd", "torch.optim.SGD", state_copies=0)  # no momentum: no state
for _name in ("xor", "moons", "circles", "spirals"):
    register_generator(_name, f"src.run.generators.make_{_name}")
