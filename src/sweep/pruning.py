"""Pruning a search's trial while it trains (`hydra.sweeper.pruner`): a Lightning callback.

Only Optuna's public storage and pruner APIs: it works wherever the job reaches the storage.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
from omegaconf import DictConfig

from src.sweep.space import make_pruner, study_storage


class TrialPruning(pl.Callback):
    """Reports the stack's mean val_loss each epoch; a pruned stack's members end "pruned"."""

    def __init__(self, sweeper: DictConfig, sweep_dir: Path, trial_number: int):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = study_storage(sweeper.storage, sweep_dir)
        self.study = optuna.load_study(
            study_name=sweeper.study_name,
            storage=self.storage,
            pruner=make_pruner(sweeper.pruner, sweeper.pruner_args),
        )
        study_id = self.storage.get_study_id_from_name(sweeper.study_name)
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        losses = [m["val_loss"] for m in pl_module.val_metrics]
        if trainer.sanity_checking or not all(map(math.isfinite, losses)):
            return  # a diverged member makes the trial the worst anyway
        epoch = trainer.current_epoch
        self.storage.set_trial_intermediate_value(self.trial_id, epoch, statistics.fmean(losses))
        if self.study.pruner.prune(self.study, self.storage.get_trial(self.trial_id)):
            self.pruned_at = epoch
            trainer.should_stop = True

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.pruned_at is not None:
            pl_module.status = ["pruned" if s == "ok" else s for s in pl_module.status]
