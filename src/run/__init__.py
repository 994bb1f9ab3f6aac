"""One training run: from a composed config to a trained model, its metrics.json and model.pt.

`training.train(cfg)` trains one seed, `training.train_stack(cfg, seeds, dirs)` the seeds of one
configuration as one stacked model; `validation.validate(cfg)` refuses first what cannot run (a bad
value or key, a machine too small); `generators` and `data` make the data set (conf group
`data`), `nets` and `model` the networks and the LightningModule (`model`), `loggers` the
experiment logger (`logger`), `files` where a run writes and how its records are read. Nothing
here knows of sweeps or reports.
"""
