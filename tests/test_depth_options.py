"""Depth options (model.residual, model.norm, model.init) and per-layer gradient norms: the
networks they build, their stacked twins, training with them, defaults unchanged, and the
`grad_norm/layer_<i>` values in metrics.json and wandb."""

import itertools
import json
import math

import pytest
import torch
from omegaconf import open_dict
from torch import nn

from src.errors import ConfigError
from src.run.files import member_dir
from src.run.model import MLPClassifier
from src.run.nets import (
    MLP,
    StackedBatchNorm,
    StackedLayerNorm,
    StackedLinear,
    StackedMLP,
    mlp_from_hparams,
    seeded_mlp,
)
from src.run.training import train, train_stack, validate

from .conftest import wandb_history, wandb_records

NORM_TYPES = {
    "layer": (nn.LayerNorm, StackedLayerNorm),
    "batch": (nn.BatchNorm1d, StackedBatchNorm),
}


@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
@pytest.mark.parametrize("residual", [False, True])
def test_each_option_builds_the_layers_it_names(norm, residual):
    net = MLP(depth=3, width=4, residual=residual, norm=norm)
    stack = StackedMLP(
        [seeded_mlp(s, depth=3, width=4, residual=residual, norm=norm) for s in (0, 1)]
    )
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(4, 2), (4, 4), (4, 4), (1, 4)]
    assert all(type(layer) is StackedLinear for layer in stack.layers)
    assert [tuple(layer.weight.shape) for layer in stack.layers] == [
        (2, 4, 2),
        (2, 4, 4),
        (2, 4, 4),
        (2, 1, 4),
    ]
    if norm == "none":
        assert not hasattr(net, "norms") and not hasattr(stack, "norms")
    else:
        plain, stacked = NORM_TYPES[norm]
        assert [type(n) for n in net.norms] == [plain] * 3
        assert [type(n) for n in stack.norms] == [stacked] * 3
        assert all(n.weight.shape == (4,) for n in net.norms)
        assert all(n.weight.shape == (2, 4) for n in stack.norms)
    assert list(stack.state_dict()) == list(net.state_dict())
    assert net(torch.zeros(5, 2)).shape == (5, 1) and stack(torch.zeros(5, 2)).shape == (2, 5, 1)


@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
def test_residual_forward_is_h_plus_act_of_norm_of_wh_plus_b(norm):
    torch.manual_seed(0)
    net = MLP(depth=3, width=4, residual=True, norm=norm)
    x = torch.randn(9, 2)
    norms = net.norms if norm != "none" else [nn.Identity()] * 3
    (a, b, c, out), act = net.layers, torch.tanh
    h = act(norms[0](a(x)))  # the first hidden layer has no skip
    h = h + act(norms[1](b(h)))
    h = h + act(norms[2](c(h)))
    assert torch.allclose(net(x), out(h), atol=1e-6)
    plain = MLP(depth=3, width=4, norm=norm)
    plain.load_state_dict(net.state_dict())
    assert not torch.allclose(plain(x), net(x))  # the skips change the output


def _weights(net):
    return [layer.weight.detach() for layer in net.layers]


def test_init_options_draw_the_weights_they_document():
    torch.manual_seed(1)
    net = MLP(depth=3, width=8, init="orthogonal")
    for w in _weights(net)[1:3]:  # the square hidden-to-hidden weights
        assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)
    first = _weights(net)[0]  # (8, 2): its 2 columns are orthonormal
    assert torch.allclose(first.T @ first, torch.eye(2), atol=1e-5)
    for init in ("xavier", "kaiming", "orthogonal"):
        net = MLP(depth=3, width=8, init=init)
        assert all(torch.equal(layer.bias, torch.zeros_like(layer.bias)) for layer in net.layers)
    wide = MLP(depth=2, width=400, init="xavier")
    bound = math.sqrt(6 / 800)  # the hidden (400, 400) weight
    assert wide.layers[1].weight.abs().max() <= bound < 1.05 * wide.layers[1].weight.abs().max()
    wide = MLP(depth=2, width=400, init="kaiming")  # tanh: gain 5/3; the logit: gain 1
    bound = 5 / 3 * math.sqrt(3 / 400)
    assert wide.layers[1].weight.abs().max() <= bound < 1.05 * wide.layers[1].weight.abs().max()
    last = wide.layers[2].weight.abs().max()
    assert last <= math.sqrt(3 / 400) < 1.2 * last
    relu = MLP(depth=2, width=400, activation="relu", init="kaiming")
    bound = math.sqrt(2) * math.sqrt(3 / 400)
    assert relu.layers[1].weight.abs().max() <= bound < 1.05 * relu.layers[1].weight.abs().max()


def test_with_defaults_weights_forward_and_gradients_are_those_of_before():
    # Before the options: torch.manual_seed(s); MLP(depth, width), forward act(Wh + b).
    for seed, depth in itertools.product((0, 5), (0, 1, 4)):
        model = MLPClassifier(depth=depth, width=6, seeds=[seed])
        torch.manual_seed(seed)
        before = MLP(depth, 6)
        state = model.net.member_state(0)
        assert list(state) == [
            f"layers.{i}.{p}" for i in range(depth + 1) for p in ("weight", "bias")
        ]
        assert all(torch.equal(state[n], t) for n, t in before.state_dict().items())
    stack = StackedMLP([seeded_mlp(s, depth=3, width=5) for s in (0, 1)])
    x = torch.randn(2, 16, 2)
    h = x
    for layer in stack.layers[:-1]:  # the stacked forward as it was written before
        h = torch.tanh(torch.baddbmm(layer.bias.unsqueeze(1), h, layer.weight.transpose(1, 2)))
    last = stack.layers[-1]
    expected = torch.baddbmm(last.bias.unsqueeze(1), h, last.weight.transpose(1, 2))
    assert torch.equal(stack(x), expected)  # bit for bit
    grads = torch.autograd.grad(expected.sum(), list(stack.parameters()))
    assert all(
        torch.equal(a, b)
        for a, b in zip(torch.autograd.grad(stack(x).sum(), list(stack.parameters())), grads)
    )


def test_the_diagnostics_do_not_change_the_training(make_cfg, tmp_path, monkeypatch):
    import pytorch_lightning as pl

    cfg = make_cfg("model.depth=3")
    dirs = {s: member_dir(tmp_path / "with", s) for s in (0, 1)}
    with_norms = train_stack(cfg, [0, 1], dirs)
    monkeypatch.setattr(
        MLPClassifier, "on_before_optimizer_step", pl.LightningModule.on_before_optimizer_step
    )
    dirs = {s: member_dir(tmp_path / "without", s) for s in (0, 1)}
    without = train_stack(cfg, [0, 1], dirs)
    for seed in (0, 1):
        assert "grad_norm/layer_0" not in without[seed]["history"][0]
        stripped = [
            {k: v for k, v in r.items() if not k.startswith("grad_norm/")}
            for r in with_norms[seed]["history"]
        ]
        assert stripped == without[seed]["history"]  # bit for bit
        assert with_norms[seed]["test_loss"] == without[seed]["test_loss"]


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_a_stack_of_residual_normalized_nets_is_its_members(norm):
    args = {"depth": 3, "width": 5, "residual": True, "norm": norm, "init": "orthogonal"}
    nets = [seeded_mlp(s, **args) for s in (0, 1, 2)]
    stack = StackedMLP(nets)
    for _ in range(3):  # train mode: batch statistics, running ones updated per member
        x = torch.randn(3, 16, 2)
        out = stack(x)
        alone = [net(x[k]) for k, net in enumerate(nets)]  # once: each call updates the stats
        assert all(torch.allclose(out[k], alone[k], atol=1e-5) for k in range(3))
        grads = torch.autograd.grad(out[1].sum(), [layer.weight for layer in stack.layers])
        weights = [layer.weight for layer in nets[1].layers]
        expected = torch.autograd.grad(alone[1].sum(), weights)
        assert all(torch.allclose(a[1], b, atol=1e-5) for a, b in zip(grads, expected))
    stack.eval()
    x = torch.randn(20, 2)  # eval: one batch for all, running statistics
    out = stack(x)
    for k, net in enumerate(nets):
        net.eval()
        assert torch.allclose(out[k], net(x), atol=1e-5)
        loaded = MLP(**args)
        loaded.load_state_dict(stack.member_state(k), strict=True)
        for name, t in net.state_dict().items():  # running statistics included
            assert torch.allclose(loaded.state_dict()[name].double(), t.double(), atol=1e-6), name
        assert torch.allclose(loaded.eval()(x), net(x), atol=1e-5)
    if norm == "batch":
        assert stack.norms[0].num_batches_tracked.tolist() == [3, 3, 3]
        assert not torch.equal(stack.norms[0].running_mean[0], stack.norms[0].running_mean[1])


@pytest.mark.parametrize(
    "options",
    [
        ["model.residual=true"],
        ["model.norm=layer"],
        ["model.norm=batch"],
        ["model.residual=true", "model.norm=batch", "model.init=kaiming"],
    ],
)
def test_residual_and_normalized_nets_learn_xor(make_cfg, options):
    cfg = make_cfg(
        "model.depth=5", "data.n_train=512", "data.batch_size=32", "trainer.max_epochs=6", *options
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok"
    assert metrics["train_loss"] < 0.5 * math.log(2), metrics["history"]
    assert metrics["val_accuracy"] > 0.9


def test_saved_weights_and_hparams_rebuild_the_net(make_cfg, tmp_path):
    cfg = make_cfg("model.depth=2", "model.residual=true", "model.norm=batch", "model.init=xavier")
    train(cfg)
    saved = torch.load(tmp_path / "run" / "model.pt")
    assert {k: saved["hparams"][k] for k in ("residual", "norm", "init")} == {
        "residual": True,
        "norm": "batch",
        "init": "xavier",
    }
    net = mlp_from_hparams(saved["hparams"])
    net.load_state_dict(saved["state_dict"], strict=True)
    assert not net.training and net.norms[0].num_batches_tracked == 2 * 4  # 2 epochs of 4 batches


def _grad_norms(record):
    return [
        record[f"grad_norm/layer_{i}"]
        for i in range(len([k for k in record if k.startswith("grad_norm/")]))
    ]


def test_grad_norms_per_layer_per_epoch_in_metrics_and_wandb(make_cfg, tmp_path):
    results, dirs = None, {s: member_dir(tmp_path / "stack", s) for s in (0, 1)}
    results = train_stack(
        make_cfg("model.depth=3", "trainer.max_epochs=3", "logger=wandb"), [0, 1], dirs
    )
    for seed, out in dirs.items():
        history = json.loads((out / "metrics.json").read_text())["history"]
        assert len(history) == 3
        for record in history:
            keys = sorted(k for k in record if k.startswith("grad_norm/"))
            assert keys == [f"grad_norm/layer_{i}" for i in range(4)]
            assert all(math.isfinite(v) and v > 0 for v in _grad_norms(record))
        [record_file] = wandb_records(out / "wandb")
        rows = [r for r in wandb_history(record_file) if "val_loss" in r]
        assert len(rows) == 3
        for row, record in zip(rows, history):
            assert [row[f"grad_norm/layer_{i}"] for i in range(4)] == pytest.approx(
                _grad_norms(record)
            )
        assert history == results[seed]["history"]


def test_a_members_grad_norms_are_a_single_runs(make_cfg, tmp_path):
    grid = ("model.depth=4", "model.residual=true", "model.norm=layer")
    stacked = train_stack(
        make_cfg(*grid), [0, 1, 2], {s: member_dir(tmp_path / "stack", s) for s in (0, 1, 2)}
    )
    single = train(make_cfg(*grid, "seed=1", f"output_dir={tmp_path / 'single'}"))
    for a, b in zip(stacked[1]["history"], single["history"], strict=True):
        assert _grad_norms(a) == pytest.approx(_grad_norms(b), rel=1e-4)
    assert _grad_norms(stacked[0]["history"][0]) != pytest.approx(
        _grad_norms(single["history"][0]), rel=1e-2
    )


def test_the_epoch_value_is_the_mean_of_the_step_norms():
    import pytorch_lightning as pl

    from src.run.data import GeneratedDataModule

    steps = []

    class Model(MLPClassifier):
        def on_before_optimizer_step(self, optimizer):
            super().on_before_optimizer_step(optimizer)
            steps.append(
                [torch.linalg.vector_norm(layer.weight.grad[0]).item() for layer in self.net.layers]
            )

    model = Model(depth=2, width=4)
    data = GeneratedDataModule(n_train=64, n_val=32, n_test=32, batch_size=16)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    assert len(steps) == 8
    for epoch, record in enumerate(model.history[0]):
        mean = torch.tensor(steps[4 * epoch : 4 * epoch + 4]).mean(0).tolist()
        assert _grad_norms(record) == pytest.approx(mean, rel=1e-5)


@pytest.mark.parametrize(
    "override, named",
    [
        ("model.norm=foo", "model.norm='foo'"),
        ("model.init=bar", "model.init='bar'"),
        ("model.residual=3", "model.residual=3"),
        ("model.residual=yes", "model.residual='yes'"),
    ],
)
def test_bad_values_are_refused_naming_the_key(make_cfg, override, named):
    with pytest.raises(ConfigError, match=f"^{named} is not allowed"):
        validate(make_cfg(override))


def test_batch_norm_refuses_a_training_batch_of_one_sample(make_cfg):
    with pytest.raises(ConfigError, match="^data.batch_size=16 is not allowed"):
        validate(make_cfg("model.norm=batch", "data.n_train=65"))
    validate(make_cfg("model.norm=layer", "data.n_train=65"))
    validate(make_cfg("model.norm=batch", "data.n_train=66"))


def test_the_options_can_be_searched():
    from src.sweep.space import check_search_space, search_space

    from .test_search import search_cfg

    cfg = search_cfg()
    space = {
        "model.residual": "choice(true, false)",
        "model.norm": "choice(none, layer, batch)",
        "model.init": "choice(default, xavier, kaiming, orthogonal)",
    }
    with open_dict(cfg):
        cfg.hydra.sweeper.params.update(space)
    check_search_space(cfg)  # passes
    trial = search_cfg()  # every value the sweeper can propose is a valid config
    for key, (_, override) in search_space(cfg).items():
        if key in space:
            for value in override.sweep_iterator():
                with open_dict(trial):
                    trial.model[key.split(".")[1]] = value
                validate(trial)
