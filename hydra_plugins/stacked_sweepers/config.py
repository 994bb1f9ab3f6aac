"""The plugins' settings, registered in Hydra's ConfigStore as `hydra/sweeper/seed_stacking`,
`hydra/sweeper/stacked_search` and `hydra/launcher/slurm_pool`. Values a user types are typed
Any where a wrong one must reach the project's own check (src/sweep/checks.py), which names the
key in one line."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf


@dataclass
class SeedStackingSweeperConf:
    _target_: str = "hydra_plugins.stacked_sweepers.grid.SeedStackingSweeper"
    max_batch_size: int | None = None  # jobs launched at once (null: all), as BasicSweeper's
    params: dict[str, str] | None = None  # sweeps given in the config, as BasicSweeper's
    # A list of params dicts, each added to `params`: the sweep runs the union of their grids.
    grids: Any = None
    # true: one job per configuration with all its seeds; false: one job per seed, as BasicSweeper.
    stack_seeds: Any = True
    seed_key: str = "seed"  # the key whose values are stacked
    stack_key: str = "seeds"  # the key the stacked job gets them in, as a list


@dataclass
class SamplerConf:
    name: Any = "tpe"  # tpe | random | gp | qmc (Optuna's samplers of one objective)
    seed: Any = None  # a seed makes the trials a search proposes repeatable
    n_startup_trials: Any = 10  # tpe, gp: random trials before the model proposes
    constant_liar: Any = True  # tpe: trials in flight count as bad, so parallel trials differ
    multivariate: Any = False  # tpe: model the parameters jointly


@dataclass
class StackedSearchSweeperConf:
    _target_: str = "hydra_plugins.stacked_sweepers.search.StackedSearchSweeper"
    n_trials: Any = 20  # finished trials the study ends with (a resumed one counts its own)
    n_jobs: Any = 1  # trials asked for at once, run side by side by the launcher
    direction: Any = "minimize"  # of the trial's value: the mean val_loss of its seeds
    study_name: Any = "search"
    storage: Any = None  # null: <sweep dir>/study.journal; or an Optuna URL (sqlite:///x.db)
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: Any = None  # null (none) | median | percentile | hyperband | successive_halving | ...
    pruner_args: dict[str, Any] = field(default_factory=dict)  # the pruner's own arguments
    params: dict[str, str] | None = None  # the space, in Hydra's override syntax
    seed_key: str = "seed"  # its values are each trial's stack of seeds, not a dimension
    stack_key: str = "seeds"


@dataclass
class SlurmPoolConf(SlurmQueueConf):
    """Hydra's submitit_slurm settings (each one for a worker task), and the pool's own."""

    _target_: str = "hydra_plugins.stacked_sweepers.slurm.SlurmPoolLauncher"
    workers: int = 8  # worker tasks at once, each taking the sweep's jobs one by one
    retries: int = 1  # times a job whose task SLURM ended runs again on another worker


for name, node in (
    ("seed_stacking", SeedStackingSweeperConf),
    ("stacked_search", StackedSearchSweeperConf),
):
    ConfigStore.instance().store(
        group="hydra/sweeper", name=name, node=node, provider="stacked_sweepers"
    )
ConfigStore.instance().store(
    group="hydra/launcher", name="slurm_pool", node=SlurmPoolConf, provider="stacked_sweepers"
)
