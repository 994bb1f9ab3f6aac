import pytest
import torch
from torch import nn

from src.run.model import MLPClassifier
from src.run.nets import ACTIVATIONS, MLP, count_parameters


def expected_params(depth: int, width: int, n_in: int = 2) -> int:
    if depth == 0:
        return n_in + 1
    return (n_in + 1) * width + (depth - 1) * (width + 1) * width + (width + 1)


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 5, 10, 20])
@pytest.mark.parametrize("width", [1, 2, 20])
def test_parameter_count_and_output_shape(depth, width):
    net = MLP(depth, width)
    assert count_parameters(net) == expected_params(depth, width)
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == depth + 1
    assert net(torch.zeros(7, 2)).shape == (7, 1)


def test_depth_zero_is_logistic_regression():
    net = MLP(0, 10)
    x = torch.randn(5, 2)
    assert len(net.layers) == 1 and torch.equal(net(x), net.layers[0](x))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_between_layers_but_not_on_the_logit(activation):
    net = MLP(2, 4, activation)
    assert isinstance(net.activation, ACTIVATIONS[activation])
    x = torch.randn(5, 2)
    a, b, c = net.layers
    act = net.activation
    assert torch.allclose(net(x), c(act(b(act(a(x))))))


def test_lightning_module_returns_one_logit_per_point():
    model = MLPClassifier(depth=3, width=5)
    assert model(torch.randn(11, 2)).shape == (1, 11)  # (members, points)
    assert model.hparams.depth == 3 and model.hparams.width == 5


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_optimizer_choice(name, cls):
    optimizer = MLPClassifier(optimizer=name, lr=0.5).configure_optimizers()
    assert isinstance(optimizer, cls) and optimizer.param_groups[0]["lr"] == 0.5
