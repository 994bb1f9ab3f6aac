"""The LightningDataModule serving one generated data set (`data=<generator>`)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from src.run.generators import make_splits
from src.run.schema import DATA_KEYS, GENERATORS, DataConf, own_settings, settings


class GeneratedDataModule(pl.LightningDataModule):
    """Train, validation and test splits of one generated data set, drawn from `seed` alone.
    Training batch row k is the batch a single run of seed `shuffle_seeds[k]` would see."""

    def __init__(
        self,
        name: str = "xor",
        n_train: int = 2500,
        n_val: int = 500,
        n_test: int = 500,
        noise: float = 0.1,
        batch_size: int = 128,
        seed: int = 42,
        shuffle_seeds: Sequence[int] = (0,),
    ):
        super().__init__()
        self.save_hyperparameters(ignore="shuffle_seeds", logger=False)
        self.shuffle_seeds = list(shuffle_seeds)
        self.splits: dict[str, TensorDataset] = {}

    # The data set's own settings (src/run/schema.py: data.n_rings...), from_config's.
    generator_settings: Mapping[str, float] = {}

    @classmethod
    def from_config(cls, data: Mapping, shuffle_seeds: Sequence[int]) -> GeneratedDataModule:
        """The data module a composed config's `data` describes."""
        module = cls(**{key: data[key] for key in settings(DataConf)}, shuffle_seeds=shuffle_seeds)
        module.generator_settings = own_settings(data, GENERATORS, "name")
        return module

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            hp = self.hparams
            drawn = make_splits(**{k: hp[k] for k in DATA_KEYS}, **self.generator_settings)
            self.splits = {split: TensorDataset(*tensors) for split, tensors in drawn.items()}

    # Whole index tensors (batch_size=None): one indexing op per batch, no per-sample collate.
    def train_dataloader(self) -> DataLoader:
        """Batches of shape (K, batch_size, 2) and (K, batch_size), K = len(shuffle_seeds)."""
        orders = [torch.Generator().manual_seed(seed) for seed in self.shuffle_seeds]
        batches = ShuffledBatches(len(self.splits["train"]), self.hparams.batch_size, orders)
        return DataLoader(self.splits["train"], sampler=batches, batch_size=None)

    # Evaluation sets are small: one batch each, so an epoch's evaluation is one forward pass.
    def val_dataloader(self) -> DataLoader:
        return self._whole("val")

    def test_dataloader(self) -> DataLoader:
        return self._whole("test")

    def _whole(self, split: str) -> DataLoader:
        dataset = self.splits[split]
        return DataLoader(dataset, sampler=[torch.arange(len(dataset))], batch_size=None)


class ShuffledBatches(Sampler[torch.Tensor]):
    """Index batches (K, batch_size): row k walks a permutation of range(n) per epoch drawn
    from the k-th generator."""

    def __init__(self, n: int, batch_size: int, generators: list[torch.Generator]):
        self.n, self.batch_size, self.generators = n, batch_size, generators

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        orders = [torch.randperm(self.n, generator=g) for g in self.generators]
        return iter(torch.stack(orders).split(self.batch_size, dim=1))
