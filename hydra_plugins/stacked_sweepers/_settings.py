"""The plugins' settings, registered in Hydra's ConfigStore as `hydra/sweeper/seed_stacking`,
`hydra/sweeper/stacked_search` and `hydra/launcher/dask_<scheduler>`. Values a user types are typed
Any where a wrong one must reach the project's own check (src/sweep/preflight.py), which names the
key in one line.

Imported by the package, never by Hydra's plugin scan (it skips modules named with a leading
underscore): a scan re-executes the modules it visits, and a worker that installs Hydra's state
(src/sweep/worker.py) would get new classes for these, unlike the ones its configs hold."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from src.run.schema import SEED_KEY, STACK_KEY


@dataclass
class SeedStackingSweeperConf:
    _target_: str = "hydra_plugins.stacked_sweepers.grid_sweeper.SeedStackingSweeper"
    kind: str = "grid"  # what the sweep is, as its jobs and its report read it (.sweep.json)
    max_batch_size: int | None = None  # jobs launched at once (null: all), as BasicSweeper's
    params: dict[str, str] | None = None  # sweeps given in the config, as BasicSweeper's
    # A list of params dicts, each added to `params`: the sweep runs the union of their grids.
    grids: Any = None
    # true: one job per configuration with all its seeds; false: one job per seed, as BasicSweeper.
    stack_seeds: Any = True
    seed_key: str = SEED_KEY  # the key whose values are stacked
    stack_key: str = STACK_KEY  # the key the stacked job gets them in, as a list


@dataclass
class SamplerConf:
    name: Any = "tpe"  # tpe | random | gp | qmc (Optuna's samplers of one objective)
    seed: Any = None  # a seed makes the trials a search proposes repeatable
    n_startup_trials: Any = 10  # tpe, gp: random trials before the model proposes
    constant_liar: Any = True  # tpe: trials in flight count as bad, so parallel trials differ
    multivariate: Any = False  # tpe: model the parameters jointly


@dataclass
class StackedSearchSweeperConf:
    _target_: str = "hydra_plugins.stacked_sweepers.optuna_sweeper.StackedSearchSweeper"
    kind: str = "search"
    n_trials: Any = 20  # finished trials the study ends with (a resumed one counts its own)
    n_jobs: Any = 1  # trials asked for at once, run side by side by the launcher
    direction: Any = "minimize"  # of the trial's value: the mean val_loss of its seeds
    study_name: Any = "search"
    storage: Any = None  # null: <sweep dir>/study.journal; or an Optuna URL (sqlite:///x.db)
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: Any = None  # null (none) | median | percentile | hyperband | successive_halving | ...
    pruner_args: dict[str, Any] = field(default_factory=dict)  # the pruner's own arguments
    params: dict[str, str] | None = None  # the space, in Hydra's override syntax
    seed_key: str = SEED_KEY  # its values are each trial's stack of seeds, not a dimension
    stack_key: str = STACK_KEY


@dataclass
class JobqueueLauncherConf:
    """A sweep's jobs run by Dask workers that dask-jobqueue submits as batch jobs. Registered
    as hydra/launcher/dask_<scheduler> for each batch system; the project's own yaml files
    (conf/hydra/launcher/) add the hooks that record its jobs."""

    _target_: str = "hydra_plugins.stacked_sweepers.jobqueue_launcher.JobqueueLauncher"
    scheduler: str = "slurm"  # slurm | pbs | sge | lsf
    workers: Any = 8  # worker batch jobs at once, at most (never more than jobs waiting)
    retries: Any = 1  # times a job whose worker died runs again on another worker
    partition: Any = None  # the batch queue (null: the cluster's default)
    account: Any = None
    timeout_min: Any = 60  # a worker's wall time; it retires before and another takes over
    cpus_per_task: Any = 1
    mem_gb: Any = 2
    gpus_per_node: Any = 0
    job_extra_directives: list[str] = field(default_factory=list)  # e.g. ["--qos=short"]
    job_script_prologue: list[str] = field(default_factory=list)  # e.g. ["module load cuda"]
    python: Any = None  # the workers' Python (null: this one, which the nodes must share)
    interface: Any = None  # the network interface workers reach the scheduler on (ib0, lo)
    port: Any = 0  # the scheduler's port (0: any free one)
    dashboard: Any = ":0"  # the Dask dashboard's address, where bokeh is installed; null: none
    death_timeout_s: Any = 60  # a worker that lost its scheduler ends after this
    folder: str = "${hydra.sweep.dir}/.cluster"  # the workers' logs, certificate and job ids
    job_ended: Any = None  # a function called with each JobReturn in the main process
    job_lost: Any = None  # a function that records a job no worker finished, or null


for name, node in (
    ("seed_stacking", SeedStackingSweeperConf),
    ("stacked_search", StackedSearchSweeperConf),
):
    ConfigStore.instance().store(
        group="hydra/sweeper", name=name, node=node, provider="stacked_sweepers"
    )
for scheduler in ("slurm", "pbs", "sge", "lsf"):
    ConfigStore.instance().store(
        group="hydra/launcher",
        name=f"dask_{scheduler}",
        node=JobqueueLauncherConf(scheduler=scheduler),
        provider="stacked_sweepers",
    )
