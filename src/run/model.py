"""The LightningModule for `model`: K MLPs of src/run/nets.py trained side by side as classifiers.

A single run is K = 1. A sweep's repetitions of one configuration (its seeds) are K members of
one stacked model: member k starts from the weights a single run with seed `seeds[k]` starts
from, sees that run's batch order, and gets exactly its own gradient (the loss is the sum over
members of each member's own mean loss; Adam and SGD update every element on its own).

Every epoch's record also holds each Linear weight's gradient norm, `grad_norm/layer_<i>`
(layer_0 the input layer ... layer_<depth> the output layer): the mean, over the epoch's
training steps, of the L2 (Frobenius) norm of that member's weight gradient at each step, taken
after the backward pass and before the optimizer step.
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

    `history[k]` holds member k's per-epoch records; `status[k]` is "ok", or "diverged" from the
    epoch a value of its record (a loss, mostly; a gradient norm counts too) became NaN or
    infinite (its history stops there, the others train on);
    `test_metrics[k]` its test metrics. `member_loggers[k]`, when set, gets member k's rows.
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
        # After backward, before the step: the gradients of this step. Summed on the tensor
        # side; read out once per epoch (no host sync per step).
        with torch.no_grad():
            norms = self.net.weight_grad_norms()
            if self._grad_norm_sum is None:
                self._grad_norm_sum = norms
            else:
                self._grad_norm_sum += norms
        self._grad_norm_steps += 1

    def _epoch_grad_norms(self) -> list[dict[str, float]]:
        """Each member's mean per-step gradient norm per layer over the epoch, then a fresh
        start."""
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
        # torchmetrics' binary_accuracy, per member: it would sigmoid all members' outputs
        # again if one member's were NaN (its input check looks at the whole tensor).
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
        # Lightning runs validation before this hook, so the epoch's record is complete here.
        # A non-finite value anywhere in it, a gradient norm included, is a divergence.
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
        # A diverged member ends with the weights it had when it diverged, as a single run
        # (which stops there) would: the others went on training, it must not have drifted.
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
