"""Networks of Vars, the matrix backend (delta rule) and torch agree; initializers, data and
the adaptive schedule behave as the course and the report say."""

import numpy as np
import pytest
import torch

from src.autodiff import (
    ConstantInitializer,
    DenseLayer,
    GlorotInitializer,
    HeInitializer,
    MatrixNet,
    Network,
    NormalInitializer,
    build_network,
    make_data,
    mean_squared_error,
    squared_error,
)
from src.autodiff.schedules import Adaptive, ExponentialDecay, StepDecay


def torch_loss_and_grads(net: MatrixNet, x, t, kind):
    """The same net in torch (float64): loss and d loss / d W, b per layer."""
    acts = {
        "identity": lambda a: a,
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    z = torch.tensor(x)
    for W, b, name in zip(Ws, bs, net.activations):
        z = acts[name](z @ W.T + b)
    err = (z - torch.tensor(t)) ** 2
    loss = err.sum() if kind == "sum" else err.mean()
    loss.backward()
    return loss.item(), [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


@pytest.mark.parametrize(
    "sizes, activation",
    [
        ([1, 1], "identity"),
        ([1, 8, 1], "relu"),
        ([3, 5, 4, 2], "tanh"),
        ([2, 6, 6, 6, 3], "sigmoid"),
        ([3, 7, 5, 4, 3, 1], "relu"),
    ],
)
@pytest.mark.parametrize("kind", ["sum", "mean"])
def test_var_matrix_and_torch_agree(sizes, activation, kind):
    rng = np.random.default_rng(len(sizes))
    network = build_network(
        sizes, activation, "tanh" if sizes[-1] > 1 else "identity", "normal", rng, std=0.7
    )
    for b in [b for layer in network.layers for b in layer.bias]:
        b.v = float(rng.normal(0, 0.3))  # non-zero biases, so they matter
    x = rng.normal(size=(13, sizes[0]))
    t = rng.normal(size=(13, sizes[-1]))
    matrix = MatrixNet.from_layers(network)

    loss_fn = squared_error if kind == "sum" else mean_squared_error
    loss = loss_fn(network(x.tolist()), t.tolist())
    loss.backward()
    m_loss, m_gW, m_gb = matrix.gradients(x, t, kind)
    t_loss, t_gW, t_gb = torch_loss_and_grads(matrix, x, t, kind)

    assert loss.v == pytest.approx(m_loss, rel=1e-9) and m_loss == pytest.approx(t_loss, rel=1e-9)
    for layer, gW, gb, tW, tb in zip(network.layers, m_gW, m_gb, t_gW, t_gb):
        var_gW = np.array([[w.grad for w in row] for row in layer.weights]).T
        var_gb = np.array([b.grad for b in layer.bias])
        np.testing.assert_allclose(var_gW, gW, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(var_gb, gb, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gW, tW, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gb, tb, rtol=1e-9, atol=1e-12)
    assert any(np.abs(g).max() > 1e-3 for g in m_gW)  # the check is not vacuous


def test_sgd_steps_agree_between_backends():
    rng = np.random.default_rng(3)
    network = build_network([1, 8, 1], "relu", "identity", "normal", rng)
    matrix = MatrixNet.from_layers(network)
    data = make_data()
    for _ in range(5):
        loss = squared_error(network(data.x_train.tolist()), data.y_train.tolist())
        loss.backward()
        network.sgd_step(2e-3)
        network.zero_grad()
        m_loss, gW, gb = matrix.gradients(data.x_train, data.y_train)
        matrix.sgd_step(gW, gb, 2e-3)
        assert loss.v == pytest.approx(m_loss, rel=1e-9)
    assert all(p.grad == 0.0 for p in network.parameters())
    copy = build_network([1, 8, 1], rng=np.random.default_rng(99))
    matrix.copy_to(copy)
    for p, q in zip(network.parameters(), copy.parameters()):
        assert p.v == pytest.approx(q.v, rel=1e-9, abs=1e-12)


def test_dense_layer_as_in_the_course():
    layer = DenseLayer(3, 2, "identity", ConstantInitializer())
    assert len(layer.parameters()) == 3 * 2 + 2
    assert [y.v for y in layer.forward([1.0, 2.0, 3.5])] == [6.5, 6.5]  # weights 1, bias 0
    net = Network(
        [
            DenseLayer(1, 4, "relu", ConstantInitializer(1.0, -1.0)),
            DenseLayer(4, 1, "identity", ConstantInitializer(0.5, 0.0)),
        ]
    )
    assert net.forward([3.0])[0].v == 4.0  # 4 units of relu(3 - 1) = 2, times 0.5
    with pytest.raises(ValueError, match="activation"):
        DenseLayer(1, 1, "softplus")
    with pytest.raises(ValueError, match="inputs"):
        layer.forward([1.0])


@pytest.mark.parametrize(
    "initializer, n_in, n_out, std",
    [
        (NormalInitializer(rng=np.random.default_rng(0)), 200, 300, 0.1),
        (GlorotInitializer("tanh", np.random.default_rng(1)), 200, 300, np.sqrt(2 / 500)),
        (GlorotInitializer("relu", np.random.default_rng(2)), 200, 300, np.sqrt(4 / 500)),
        (HeInitializer("tanh", np.random.default_rng(3)), 200, 300, np.sqrt(1 / 200)),
        (HeInitializer("relu", np.random.default_rng(4)), 200, 300, np.sqrt(2 / 200)),
    ],
)
def test_initializer_variances(initializer, n_in, n_out, std):
    layer = DenseLayer(n_in, n_out, "relu", initializer)
    w = np.array([[v.v for v in row] for row in layer.weights])
    assert w.shape == (n_in, n_out)
    assert abs(w.mean()) < 0.05 * std
    assert w.std() == pytest.approx(std, rel=0.03)
    assert all(b.v == 0.0 for b in layer.bias)


def test_the_courses_data():
    data = make_data()
    assert [len(a) for a in (data.x_train, data.x_val, data.x_test)] == [105, 105, 90]
    np.testing.assert_allclose(data.x_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(data.y_train.std(0), 1, atol=1e-12)
    # the notebook's own steps: np.random.seed(42), shuffle, normal(0.5 sin 3x + x, 0.5)
    np.random.seed(42)
    x = np.linspace(-3, 3, num=300).reshape(-1, 1)
    np.random.shuffle(x)
    y = np.random.normal(0.5 * np.sin(x[:, 0] * 3) + x[:, 0], 0.5)
    mu, sigma = x[:105].mean(), x[:105].std()
    np.testing.assert_allclose(data.x_test[:, 0], (x[210:, 0] - mu) / sigma)
    np.testing.assert_allclose(data.y_val[:, 0], (y[105:210] - y[:105].mean()) / y[:105].std())
    three = make_data(dims=3)
    assert three.x_train.shape == (105, 3) and three.y_test.shape == (90, 1)


def test_fixed_schedules():
    step, expo = StepDecay(1.0, 0.5, 10), ExponentialDecay(1.0, 0.9)
    for epoch in range(20):
        step.after_epoch(epoch, 1.0)
        expo.after_epoch(epoch, 1.0)
    assert step.lr == 0.25 and expo.lr == pytest.approx(0.9**20)


def test_adaptive_rate_follows_the_target_and_stays_bounded():
    rule = Adaptive(
        1e-3, window_start=5, window_end=10, smoothing=2, gain=0.1, min_factor=0.1, max_factor=4.0
    )
    loss = 100.0
    for epoch in range(10):  # the window: the loss falls 5% per epoch
        loss *= 0.95
        rule.after_epoch(epoch, loss)
    assert rule.lr == 1e-3 and rule.target == pytest.approx((1 - 0.95**2) / 2)
    for epoch in range(10, 40):  # slower than the target: the rate rises to its bound
        loss *= 0.99
        rule.after_epoch(epoch, loss)
    assert rule.lr == pytest.approx(4e-3)
    for epoch in range(40, 60):  # the loss goes up every epoch: halved down to its bound
        loss *= 1.5
        rule.after_epoch(epoch, loss)
    assert rule.lr == pytest.approx(1e-4)
