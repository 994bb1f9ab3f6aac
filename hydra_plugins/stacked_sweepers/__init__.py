"""The project's Hydra sweepers; both launch the seeds of a configuration as one job.

- `grid.SeedStackingSweeper` (`hydra/sweeper=seed_stacking`, the default): every combination,
  expanded as Hydra's BasicSweeper does, with the jobs that differ only in `seed` merged into
  one job that receives all their seeds as `++seeds=[...]`;
- `search.StackedSearchSweeper` (`hydra/sweeper=stacked_search`, `hparams_search=bayes`): an
  Optuna study asked for trials, each trial one job of the swept seeds, scored by their mean.

`overrides` holds what both share: expanding overrides and grouping seeds. The task trains a
job's seeds as one stacked model.
"""

from . import _settings  # noqa: F401  (registers the plugins' configs)
