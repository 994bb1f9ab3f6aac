"""The project's Hydra sweepers and launchers; both sweepers launch the seeds of a configuration
as one job.

- `grid_sweeper.SeedStackingSweeper` (`hydra/sweeper=seed_stacking`, the default): every
  combination, expanded as Hydra's BasicSweeper does, with the jobs that differ only in `seed`
  merged into one job that receives all their seeds as `++seeds=[...]`;
- `optuna_sweeper.StackedSearchSweeper` (`hydra/sweeper=stacked_search`, `hparams_search=bayes`):
  an Optuna study asked for trials, each trial one job of the swept seeds, scored by their mean;
- `local_launcher.LocalLauncher` (`hydra/launcher=local`, the default) and
  `jobqueue_launcher.JobqueueLauncher` (`hydra/launcher=slurm`, `pbs`, `sge`, `lsf`): where the
  jobs run.

`launching` is what both sweepers are (a Sweeper handing its jobs to the launcher), `overrides`
what they share: expanding overrides and grouping seeds; `composing` composes a job's config
once per kind of job; `_settings` registers their configs. The task trains a job's seeds as one
stacked model.
"""

from . import _settings  # noqa: F401  (registers the plugins' configs)
