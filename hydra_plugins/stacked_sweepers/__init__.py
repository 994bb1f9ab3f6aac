"""The project's Hydra sweepers and launchers; both sweepers launch the seeds of a configuration
as one job, and plan their sweep (.sweep.json) before its first job.

- `grid_sweeper.SeedStackingSweeper` (`hydra/sweeper=seed_stacking`, the default): every
  combination, as Hydra's BasicSweeper expands it, the seeds of one configuration one job;
- `optuna_sweeper.StackedSearchSweeper` (`hparams_search=bayes`): an Optuna study's trials,
  each one job of the swept seeds, scored by their mean;
- `local_launcher.LocalLauncher` (`hydra/launcher=local`, the default) and
  `jobqueue_launcher.JobqueueLauncher` (`hydra/launcher=slurm`, `pbs`, `sge`, `lsf`).

`launching` is what both sweepers are, `overrides` what they do with overrides, `composing`
composes a job's config once per kind of job; `_settings` registers their configs.
"""

from . import _settings  # noqa: F401  (registers the plugins' configs)
