"""Seeds stacked into one model: the sweeper's grouping, members equal to single runs,
isolation of a diverging or failing member, one wandb run per seed."""

import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.core.config_store import ConfigStore

from hydra_plugins.stacked_sweepers.grid_sweeper import SeedStackingSweeper
from src.run.data import GeneratedDataModule
from src.run.files import member_dir
from src.run.loggers import WandbPlace
from src.run.model import MLPClassifier
from src.run.nets import MLP
from src.run.training import train, train_stack

from .conftest import wandb_history, wandb_records, wandb_run_info

GRID = ["model.depth=0,1", "model.width=1,2", "seed=range(3)"]


def jobs(arguments, **settings) -> list[list[str]]:
    batches = SeedStackingSweeper(**settings).job_batches(arguments)
    return [job for batch in batches for job in batch]


def test_depth_x_width_x_seeds_launches_one_job_per_configuration():
    assert jobs(GRID) == [
        ["model.depth=0", "model.width=1", "++seeds=[0,1,2]"],
        ["model.depth=0", "model.width=2", "++seeds=[0,1,2]"],
        ["model.depth=1", "model.width=1", "++seeds=[0,1,2]"],
        ["model.depth=1", "model.width=2", "++seeds=[0,1,2]"],
    ]


def test_the_seeds_list_stands_where_the_seed_sweep_stood():
    assert jobs(["seed=4,5", "model.depth=1,2", "x=1"]) == [
        ["++seeds=[4,5]", "model.depth=1", "x=1"],
        ["++seeds=[4,5]", "model.depth=2", "x=1"],
    ]


def test_the_switch_and_sweeps_without_seeds_launch_what_basic_sweeper_does():
    # BasicSweeper's order: the cartesian product, the first key varying slowest.
    one_per_seed = [
        [f"model.depth={d}", f"model.width={w}", f"seed={s}"]
        for d in (0, 1)
        for w in (1, 2)
        for s in (0, 1, 2)
    ]
    assert jobs(GRID, stack_seeds=False) == one_per_seed
    assert jobs(GRID[:2]) == [job[:2] for job in one_per_seed[::3]]  # no seed key at all
    assert jobs([*GRID[:2], "seed=7"]) == [[*job[:2], "seed=7"] for job in one_per_seed[::3]]


def test_params_in_the_config_and_batches_as_basic_sweeper():
    found = SeedStackingSweeper(max_batch_size=3, params={"model.depth": "0,1"}).job_batches(
        ["model.width=1,2", "seed=0,1"]
    )
    assert [len(batch) for batch in found] == [3, 1]
    assert found[0][0] == ["model.depth=0", "model.width=1", "++seeds=[0,1]"]


def test_a_switch_that_is_not_a_boolean_is_refused():
    with pytest.raises(Exception, match="hydra.sweeper.stack_seeds='yes' is not allowed"):
        SeedStackingSweeper(stack_seeds="yes").plan(["seed=0,1"])  # as it plans its sweep


def test_the_sweeper_is_a_hydra_plugin_and_the_default():
    from hydra import compose, initialize_config_dir

    from .conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    # Hydra found the plugin and its config, as it finds its own sweepers'
    assert "seed_stacking.yaml" in ConfigStore.instance().list("hydra/sweeper")
    assert cfg.hydra.sweeper._target_.endswith("SeedStackingSweeper")
    assert cfg.hydra.sweeper.stack_seeds is True


def test_member_k_starts_from_the_weights_and_batches_of_a_single_run_of_seed_k():
    stacked = MLPClassifier(depth=2, width=5, seeds=[0, 3, 8])
    alone = MLPClassifier(depth=2, width=5, seeds=[3])
    for name, tensor in alone.net.member_state(0).items():
        assert torch.equal(stacked.net.member_state(1)[name], tensor)
    torch.manual_seed(3)  # what a single run did before stacking: seed, then build the net
    reference = MLP(depth=2, width=5)
    assert all(
        torch.equal(reference.state_dict()[n], t) for n, t in alone.net.member_state(0).items()
    )

    both = GeneratedDataModule(n_train=50, batch_size=8, shuffle_seeds=[0, 3])
    one = GeneratedDataModule(n_train=50, batch_size=8, shuffle_seeds=[3])
    both.setup(), one.setup()
    for _epoch in range(2):  # a fresh order every epoch, the same in both
        for (xs, ys), (x, y) in zip(both.train_dataloader(), one.train_dataloader()):
            assert torch.equal(xs[1], x[0]) and torch.equal(ys[1], y[0])


def _stack(make_cfg, tmp_path, seeds, *overrides, out="stack"):
    cfg = make_cfg(*overrides)
    dirs = {s: member_dir(tmp_path / out, s) for s in seeds}
    return train_stack(cfg, list(seeds), dirs), dirs


def test_each_member_writes_a_run_and_matches_a_single_run_up_to_rounding(make_cfg, tmp_path):
    grid = ("model.depth=2", "model.width=10")
    stacked, dirs = _stack(make_cfg, tmp_path, [0, 1, 2], *grid)
    single = train(make_cfg(*grid, "seed=1", f"output_dir={tmp_path / 'single'}"))
    member = json.loads((dirs[1] / "metrics.json").read_text())
    assert member == json.loads(json.dumps(stacked[1]))
    assert member["stacked_with"] == [0, 1, 2] and member["config"]["seed"] == 1
    for key in ("train_loss", "val_loss", "test_loss"):
        assert member[key] == pytest.approx(single[key], rel=1e-4)
    for a, b in zip(member["history"], single["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert member["config"] == {**single["config"], "output_dir": str(dirs[1])}
    saved = torch.load(dirs[1] / "model.pt")
    net = MLP(saved["hparams"]["depth"], saved["hparams"]["width"])
    net.load_state_dict(saved["state_dict"])  # the plain MLP takes a member's weights


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_each_member_trains_to_its_single_runs_weights(make_cfg, tmp_path, optimizer):
    # SGD's step is the gradient times lr: a member whose loss were scaled (a mean over the
    # members instead of their sum, 1/K each) would take smaller steps and end elsewhere.
    # Adam divides the scale away; SGD does not. Same weights, same numbers every epoch.
    grid = ("model.depth=2", "model.width=6", f"model.optimizer={optimizer}", "model.lr=0.3")
    stacked, dirs = _stack(make_cfg, tmp_path, [0, 1, 2], *grid, "trainer.max_epochs=3")
    for seed in (0, 2):
        out = tmp_path / f"single{seed}"
        single = train(make_cfg(*grid, "trainer.max_epochs=3", f"seed={seed}", f"output_dir={out}"))
        assert stacked[seed]["status"] == single["status"] == "ok"
        member, alone = _weights(dirs[seed]), _weights(out)
        assert member.keys() == alone.keys()
        for name, tensor in alone.items():
            assert torch.allclose(member[name], tensor, rtol=1e-5, atol=1e-6), (seed, name)
        start = MLPClassifier(depth=2, width=6, seeds=[seed]).net.member_state(0)
        moved = (member["layers.0.weight"] - start["layers.0.weight"]).abs().max()
        assert moved > 1e-2  # it trained: the comparison is not of two starting points
        for a, b in zip(stacked[seed]["history"], single["history"]):
            for key in ("train_loss", "val_loss"):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (seed, a["epoch"], key)
        assert stacked[seed]["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)


def test_one_step_gives_each_member_its_own_gradient_and_update():
    # One SGD step on member k's batch moves member k exactly as it moves a single run.
    seeds, lr = [0, 1, 2], 0.5
    stack = MLPClassifier(depth=2, width=5, optimizer="sgd", lr=lr, seeds=seeds)
    alone = [MLPClassifier(depth=2, width=5, optimizer="sgd", lr=lr, seeds=[s]) for s in seeds]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(len(seeds), 16, 2, generator=generator)
    y = (torch.rand(len(seeds), 16, generator=generator) > 0.5).float()
    steps = [(stack, (x, y))] + [(m, (x[k : k + 1], y[k : k + 1])) for k, m in enumerate(alone)]
    for model, batch in steps:
        optimizer = model.configure_optimizers()
        optimizer.zero_grad()
        model._step("train", batch).backward()
        optimizer.step()
    for k, single in enumerate(alone):
        for name, tensor in single.net.member_state(0).items():
            assert torch.allclose(stack.net.member_state(k)[name], tensor, atol=1e-7), (k, name)


def _batches_seen(seeds: list[int], epochs: int = 3) -> list[torch.Tensor]:
    """The training inputs a fit of the stack `seeds` got, one (K, n_train, 2) tensor per epoch
    (its batches in order, joined)."""
    import pytorch_lightning as pl

    seen: list[list[torch.Tensor]] = []

    class Recording(MLPClassifier):
        def on_train_epoch_start(self):
            seen.append([])

        def training_step(self, batch, batch_idx):
            seen[-1].append(batch[0].clone())
            return super().training_step(batch, batch_idx)

    model = Recording(depth=1, width=3, seeds=seeds)
    data = GeneratedDataModule(n_train=40, n_val=8, n_test=8, batch_size=16, shuffle_seeds=seeds)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    return [torch.cat(batches, dim=1) for batches in seen]


def test_every_epoch_a_fresh_batch_order_the_single_runs():
    stacked = _batches_seen([0, 3, 8])
    assert len(stacked) == 3 and stacked[0].shape == (3, 40, 2)
    for k, seed in enumerate([0, 3, 8]):
        alone = _batches_seen([seed])
        for epoch, (both, one) in enumerate(zip(stacked, alone)):
            assert torch.equal(both[k], one[0]), (seed, epoch)  # the single run's order
        for epoch in (1, 2):  # a new order every epoch, of the same points
            assert not torch.equal(alone[epoch][0], alone[epoch - 1][0]), (seed, epoch)
            assert sorted(alone[epoch][0].tolist()) == sorted(alone[epoch - 1][0].tolist())
    assert not torch.equal(stacked[0][0], stacked[0][1])  # the members' orders differ too


def test_the_same_stack_twice_gives_bit_identical_numbers(make_cfg, tmp_path):
    a, _ = _stack(make_cfg, tmp_path, [0, 1, 2], out="a")
    b, _ = _stack(make_cfg, tmp_path, [0, 1, 2], out="b")
    for seed in a:
        assert a[seed]["history"] == b[seed]["history"]
        assert a[seed]["test_loss"] == b[seed]["test_loss"]


class ForceDiverge:
    """Make one member's weights NaN at the start of an epoch, as a blown-up step would."""

    def __init__(self, member: int, epoch: int):
        self.member, self.epoch = member, epoch

    def __call__(self, model: MLPClassifier) -> None:
        if model.current_epoch == self.epoch:
            with torch.no_grad():
                for p in model.net.parameters():
                    p[self.member] = float("nan")


def _fit(seeds, hook=None, epochs=4):
    import pytorch_lightning as pl

    class Model(MLPClassifier):
        def on_train_epoch_start(self):
            if hook is not None:
                hook(self)

    model = Model(depth=2, width=4, seeds=seeds)
    data = GeneratedDataModule(n_train=64, n_val=32, n_test=32, batch_size=16, shuffle_seeds=seeds)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    return model


def test_a_diverging_member_is_recorded_and_the_others_train_on_untouched():
    untouched = _fit([0, 1, 2])
    forced = _fit([0, 1, 2], ForceDiverge(member=1, epoch=1))
    assert forced.status == ["ok", "diverged", "ok"]
    assert len(forced.history[1]) == 2  # stopped at the epoch it diverged
    assert not math.isfinite(forced.history[1][-1]["train_loss"])
    for k in (0, 2):  # bit for bit the numbers they get beside a healthy member
        assert forced.history[k] == untouched.history[k]
        assert len(forced.history[k]) == 4


def test_a_member_whose_files_fail_is_failed_and_the_others_are_kept(make_cfg, tmp_path):
    (member_dir(tmp_path / "stack", 1) / "model.pt").mkdir(parents=True)  # cannot be written
    results, dirs = _stack(make_cfg, tmp_path, [0, 1, 2])
    assert results[1]["status"] == "failed" and "model.pt" in results[1]["error"]
    assert not (dirs[1] / "metrics.json").exists()
    for seed in (0, 2):
        assert results[seed]["status"] == "ok" and (dirs[seed] / "metrics.json").exists()


def test_one_wandb_run_per_seed_with_its_own_history(make_cfg, tmp_path):
    results, dirs = _stack(make_cfg, tmp_path, [0, 1, 2], "logger=wandb")
    for seed, out in dirs.items():
        [record_file] = wandb_records(out / "wandb")
        info = wandb_run_info(record_file)
        assert info["job_type"] == "train" and info["group"] == "default"  # outside a sweep
        assert info["display_name"] == f"default/seed={seed}"
        assert info["config"]["seed"] == seed and info["config"]["seeds"] is None
        rows = wandb_history(record_file)
        epochs = [r for r in rows if "val_loss" in r]
        assert [r["val_loss"] for r in epochs] == pytest.approx(
            [r["val_loss"] for r in results[seed]["history"]]
        )
        assert rows[-1]["test_loss"] == pytest.approx(results[seed]["test_loss"])
    # A given group: every seed's run is in it.
    cfg = make_cfg("logger=wandb")
    grouped = {s: member_dir(tmp_path / "named", s) for s in (0, 1)}
    train_stack(cfg, [0, 1], grouped, group="model.depth=2")
    for seed, out in grouped.items():
        info = wandb_run_info(wandb_records(out / "wandb")[0])
        assert info["group"] == "model.depth=2"
        assert info["display_name"] == f"model.depth=2/seed={seed}"


class _Crash(Exception):
    pass


class _CrashInTraining(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        raise _Crash


def test_wandb_runs_go_where_they_are_placed_and_a_crash_ends_them_failed(make_cfg, tmp_path):
    shared = tmp_path / "sweep"
    places = {s: WandbPlace(shared, f"depth=2-seed={s}-abcdefgh") for s in (0, 1)}
    dirs = {s: member_dir(tmp_path / "job", s) for s in (0, 1)}
    with pytest.raises(_Crash):
        train_stack(make_cfg("logger=wandb"), [0, 1], dirs, None, [_CrashInTraining()], places)
    assert not any((tmp_path / "job").rglob("wandb"))  # none in the seeds' own folders
    runs = {wandb_run_info(r)["run_id"]: wandb_run_info(r) for r in wandb_records(shared / "wandb")}
    assert sorted(runs) == sorted(p.id for p in places.values())
    assert all(info["exit_code"] == 1 for info in runs.values())  # failed, not finished


def test_seeds_must_be_a_list_of_distinct_integers(make_cfg):
    from src.errors import ConfigError
    from src.run.training import validate

    for bad in ("seeds=[1,1]", "seeds=[]", "seeds=3", "seeds=[a]"):
        with pytest.raises(ConfigError, match="seeds="):
            validate(make_cfg(bad))
    with pytest.raises(ConfigError, match="logger.watch"):
        validate(make_cfg("seeds=[0,1]", "logger=wandb", "logger.watch=true"))


def test_member_records_look_like_single_runs(tmp_path):
    from omegaconf import OmegaConf

    from src.sweep.jobs import member_overrides, write_member_record

    overrides = member_overrides(["model.depth=1", "++seeds=[0,4]", "x=2"], 4)
    assert overrides == ["model.depth=1", "seed=4", "x=2"]
    cfg = OmegaConf.create({"seed": 0, "seeds": [0, 4], "output_dir": "x", "model": {"depth": 1}})
    write_member_record(cfg, 4, tmp_path, overrides)
    assert OmegaConf.load(tmp_path / ".hydra" / "overrides.yaml") == overrides
    saved = OmegaConf.load(tmp_path / ".hydra" / "config.yaml")
    assert saved.seed == 4 and saved.seeds is None and saved.output_dir == str(Path(tmp_path))
