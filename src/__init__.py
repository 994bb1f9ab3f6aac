"""deep-vs-wide: MLPs of every depth x width on generated data, trained, swept and reported.

The packages follow the data's way through the program; each imports only those above it:

- `errors`: the value checks every entry point shares (a wrong value is one line, exit 2);
  `folders`: a run's or a sweep's folder made or refused; `memory`: the memory available;
- `run/`: one training run (conf groups data, model, trainer, logger): the data, the nets, the
  LightningModule, the loggers, and `train` / `train_stack`, which know nothing of sweeps;
- `sweep/`: a sweep of runs (conf hydra/launcher, hparams_search): checks before the first job,
  one job of stacked seeds, progress, the end-of-sweep summary, the Bayesian search's space;
- `report/`: what a sweep shows (hydra.callbacks.report): results.csv, the figures, the page;
- `autodiff/`: parts 1 and 2 of the report, backprop from scratch (standalone).

Entry points: `python -m src.train`, `src.report` (a grid's or a search's), `src.benchmark`,
`src.autodiff.train`.
"""
