"""The LightningModule for `model`: the MLP of src/nets.py trained as a binary classifier."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.functional.classification import binary_accuracy

from src.nets import OPTIMIZERS, build_mlp


class MLPClassifier(pl.LightningModule):
    """Binary classifier trained with BCEWithLogitsLoss; logs loss and accuracy once per epoch.

    The optimizer is stepped in `training_step` (Lightning's manual optimization): for nets
    this small, the closure machinery of automatic optimization costs about 20 ms of a 0.3 s fit.
    """

    def __init__(
        self,
        depth: int = 2,
        width: int = 10,
        activation: str = "tanh",
        lr: float = 0.01,
        optimizer: str = "adam",
        in_features: int = 2,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_mlp(depth, width, activation, in_features)
        self.loss_fn = nn.BCEWithLogitsLoss()
        # Each step keeps its (logits, labels); the epoch's metrics are computed once from all of
        # them at the epoch's end. Per-step metric updates would cost more than the step itself.
        self._outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {
            split: [] for split in ("train", "val", "test")
        }
        self.history: list[dict[str, float]] = []
        self._val_values: dict[str, float] = {}
        self.diverged = False
        self.automatic_optimization = False

    def __setattr__(self, name: str, value) -> None:
        # Lightning records the running hook in _current_fx_name around every hook call, some
        # 45 times a step. nn.Module.__setattr__ checks each assignment against the module's
        # parameters, buffers and submodules: 5% of a small job's time, for a plain string.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def _step(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        self._outputs[split].append((logits.detach(), y))
        return self.loss_fn(logits, y)

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        loss = self._step("train", batch)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return loss

    def validation_step(self, batch, batch_idx):
        self._step("val", batch)

    def test_step(self, batch, batch_idx):
        self._step("test", batch)

    def _log_split(self, split: str) -> dict[str, float]:
        """Log the split's loss and accuracy over the epoch's samples; start the next afresh."""
        logits, labels = (torch.cat(parts) for parts in zip(*self._outputs[split]))
        self._outputs[split].clear()
        values = {
            f"{split}_loss": float(self.loss_fn(logits, labels)),
            f"{split}_accuracy": float(
                binary_accuracy(torch.sigmoid(logits), labels.long(), validate_args=False)
            ),
        }
        self.log_dict(values)
        return values

    def on_validation_epoch_end(self) -> None:
        self._val_values = self._log_split("val")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")

    def on_train_epoch_end(self) -> None:
        # Lightning runs validation before this hook, so the epoch's record is complete here.
        record = {"epoch": self.current_epoch, **self._log_split("train"), **self._val_values}
        self.history.append(record)
        if not all(map(_is_finite, record.values())):
            self.diverged = True
            self.trainer.should_stop = True

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.hparams.optimizer](self.parameters(), lr=self.hparams.lr)


def _is_finite(value: float) -> bool:
    return value - value == 0  # False for NaN and +-inf
