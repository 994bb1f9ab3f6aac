"""The sweeper's settings, registered as `hydra/sweeper/seed_stacking` in Hydra's ConfigStore."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SeedStackingSweeperConf:
    _target_: str = "hydra_plugins.seed_stacking_sweeper.sweeper.SeedStackingSweeper"
    max_batch_size: int | None = None  # jobs launched at once (null: all), as BasicSweeper's
    params: dict[str, str] | None = None  # sweeps given in the config, as BasicSweeper's
    # true: one job per configuration with all its seeds; false: one job per seed, as BasicSweeper.
    # Typed Any so that a wrong value reaches the task's own check, which names the key.
    stack_seeds: Any = True
    seed_key: str = "seed"  # the key whose values are stacked
    stack_key: str = "seeds"  # the key the stacked job gets them in, as a list


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="seed_stacking",
    node=SeedStackingSweeperConf,
    provider="seed_stacking_sweeper",
)
