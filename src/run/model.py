"""The LightningModule for `model`: K MLPs of src/run/nets.py trained side by side as classifiers.

Member k starts from the weights and sees the batch order of a single run of `seeds[k]`, and gets
exactly its own gradient (the loss is the sum of the members' own mean losses). Every epoch's
record also holds `grad_norm/layer_<i>`: the mean over its steps of each Linear weight's
gradient norm (layer_0 the input layer), taken before the optimizer step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from src.run.nets import StackedMLP, seeded_mlp
from src.run.schema import OPTIMIZERS, ModelConf, own_settings, settings

SPLITS = ("train", "val", "test")


class MLPClassifier(pl.LightningModule):
    """Binary classifiers trained with the logistic loss; the epoch's loss and accuracy per member.

    `history[k]`: member k's epochs; `status[k]`: "ok", or "diverged" from the epoch a value of
    its record became non-finite (its history stops there); `test_metrics[k]`;
    `member_loggers[k]`, when set, gets member k's rows.
    """

    def __init__(
        self,
        depth: int = 2,
        width: int = 10,
        activation: str = "tanh",
        lr: float = 0.01,
        optimizer: str = "adam",
        in_features: int = 2,
        residual: bool = False,
        norm: str = "none",
        init: str = "default",
        seeds: Sequence[int] = (0,),
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)  # each wandb run holds its own Hydra config
        self.seeds = list(seeds)
        net_args = {"depth": depth, "width": width, "activation": activation}
        net_args.update(residual=residual, norm=norm, init=init)
        self.net = StackedMLP([seeded_mlp(s, in_features=in_features, **net_args) for s in seeds])
        # The epoch's (logits, labels) per split; its metrics are computed once, at its end.
        self._outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {s: [] for s in SPLITS}
        self.register_buffer("active", torch.ones(len(self.seeds), dtype=torch.bool), False)
        self.history: list[list[dict[str, float]]] = [[] for _ in self.seeds]
        self.status = ["ok"] * len(self.seeds)
        self.test_metrics: list[dict[str, float]] = [{} for _ in self.seeds]
        self._diverged_weights: dict[int, dict[str, torch.Tensor]] = {}
        self.member_loggers: dict[int, pl.loggers.Logger] = {}
        self.val_metrics: list[dict[str, float]] = []  # the last validation epoch's, per member
        # The epoch's sum of per-step weight gradient norms, (depth + 1, K), and its steps.
        self._grad_norm_sum: torch.Tensor | None = None
        self._grad_norm_steps = 0

    # The chosen optimizer's own settings (src/run/schema.py: model.momentum...), from_config's.
    optimizer_settings: Mapping[str, float] = {}

    @classmethod
    def from_config(cls, model: Mapping, seeds: Sequence[int]) -> MLPClassifier:
        """The classifier a composed config's `model` describes, for these seeds."""
        classifier = cls(**{key: model[key] for key in settings(ModelConf)}, seeds=seeds)
        classifier.optimizer_settings = own_settings(model, OPTIMIZERS, "optimizer")
        return classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B) for inputs (K, B, in), or (B, in) shared by all members."""
        return self.net(x).squeeze(-1)

    def _step(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        y = y.expand_as(logits)
        self._outputs[split].append((logits.detach(), y))
        per_member = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)
        # A diverged member stops counting: where() passes it no gradient, not even a NaN.
        return torch.where(self.active, per_member, 0.0).sum()

    def training_step(self, batch, batch_idx):
        return self._step("train", batch)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # This step's gradients, summed on the device; read out once per epoch (no host sync).
        with torch.no_grad():
            norms = self.net.weight_grad_norms()
            if self._grad_norm_sum is None:
                self._grad_norm_sum = norms
            else:
                self._grad_norm_sum += norms
        self._grad_norm_steps += 1

    def _epoch_grad_norms(self) -> list[dict[str, float]]:
        """Each member's mean per-step gradient norm per layer over the epoch, then a reset."""
        if self._grad_norm_sum is None:
            return [{} for _ in self.seeds]
        means = (self._grad_norm_sum / self._grad_norm_steps).T.tolist()  # (K, depth + 1)
        self._grad_norm_sum, self._grad_norm_steps = None, 0
        return [{f"grad_norm/layer_{i}": v for i, v in enumerate(member)} for member in means]

    def validation_step(self, batch, batch_idx):
        self._step("val", batch)

    def test_step(self, batch, batch_idx):
        self._step("test", batch)

    def _epoch_metrics(self, split: str) -> list[dict[str, float]]:
        """Each member's loss and accuracy over the epoch's samples, then a fresh start."""
        logits, labels = (torch.cat(parts, dim=1) for parts in zip(*self._outputs[split]))
        self._outputs[split].clear()
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=1)
        # Not torchmetrics' binary_accuracy: one member's NaN would make it sigmoid them all again.
        accuracy = ((torch.sigmoid(logits) > 0.5) == labels.bool()).float().mean(dim=1)
        return [
            {f"{split}_loss": float(a), f"{split}_accuracy": float(b)}
            for a, b in zip(loss.tolist(), accuracy.tolist())
        ]

    def _log_member(self, k: int, row: dict[str, float]) -> None:
        logger = self.member_loggers.get(k)
        if logger is not None:
            logger.log_metrics({**row, "epoch": self.current_epoch}, step=self.global_step)

    def on_validation_epoch_end(self) -> None:
        self.val_metrics = self._epoch_metrics("val")

    def on_train_epoch_end(self) -> None:
        # After validation: the epoch's record is complete. A non-finite value is a divergence.
        epoch = zip(self._epoch_metrics("train"), self.val_metrics, self._epoch_grad_norms())
        for k, (train, val, grads) in enumerate(epoch):
            if self.status[k] != "ok":
                continue
            record = {"epoch": self.current_epoch, **train, **val, **grads}
            self.history[k].append(record)
            self._log_member(k, {**train, **val, **grads})
            if not all(map(_is_finite, record.values())):
                self.status[k] = "diverged"
                self.active[k] = False
                self._diverged_weights[k] = self.net.member_state(k)
        if not self.active.any():
            self.trainer.should_stop = True

    def on_fit_end(self) -> None:
        # A diverged member ends with its weights when it diverged, as a single run would.
        with torch.no_grad():
            for k, state in self._diverged_weights.items():
                for name, tensor in self.net.state_dict().items():
                    tensor[k] = state[name]

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._epoch_metrics("test")
        for k, row in enumerate(self.test_metrics):
            self._log_member(k, row)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = OPTIMIZERS[self.hparams.optimizer]
        return optimizer(self.parameters(), lr=float(self.hparams.lr), **self.optimizer_settings)


def _is_finite(value: float) -> bool:
    return value - value == 0  # False for NaN and +-inf
