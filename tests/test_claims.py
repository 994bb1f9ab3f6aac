"""The report's claims decided on planted results (written as a sweep writes them, no
training): a claim that clearly holds, one clearly contradicted, one within noise, one whose
runs the sweep lacks; the rule itself; dead relu units as the training measures them."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.report import claims
from src.report.evidence import FAILS, HOLDS, UNDECIDED, Interval, verdict
from src.report.results import write_results
from src.run.files import METRIC_KEYS
from src.run.nets import MLP, StackedMLP, dead_units

SEEDS = range(6)
KEYS = ("model.depth", "model.width", "model.activation", "model.optimizer", "model.lr")


def plant(sweep: Path, cells: dict[tuple, list[float]], epochs: int = 25, history=None) -> None:
    """results.csv with one ok run per (cell, seed), val_loss as given; with `history`
    (epoch -> val_loss per seed), each run's metrics.json too."""
    rows = []
    for cell, losses in cells.items():
        for seed, loss in zip(SEEDS, losses):
            job = ",".join(f"{k}={v}" for k, v in zip(KEYS, cell)) + f"/seed={seed}"
            row = {**dict(zip(KEYS, cell)), "trainer.max_epochs": epochs, "seed": seed}
            metrics = {k: 0.5 for k in METRIC_KEYS} | {"val_loss": loss, "epochs": epochs}
            rows.append({**row, "status": "ok", **metrics, "job_dir": job})
            if history is not None:
                _record(sweep / job, cell, metrics, [history(e, seed) for e in range(epochs)])
    write_results(sweep, rows + _existing(sweep))


def _existing(sweep: Path) -> list[dict]:
    return [] if not (sweep / "results.csv").exists() else claims.read_results(sweep)


def _record(folder: Path, cell: tuple, metrics: dict, losses: list[float]) -> None:
    folder.mkdir(parents=True)
    model = dict(zip(("depth", "width", "activation", "optimizer", "lr"), cell))
    data = {"name": "xor", "n_train": 2500, "n_val": 500, "n_test": 500, "noise": 0.1}
    config = {
        "model": {**model, "residual": False, "norm": "none", "init": "default"},
        "data": {**data, "batch_size": 128, "seed": 42},
    }
    history = [{"epoch": e, "train_loss": loss, "val_loss": loss} for e, loss in enumerate(losses)]
    record = {"status": "ok", **metrics, "history": history, "config": config}
    (folder / "metrics.json").write_text(json.dumps(record))


def decide(sweep: Path) -> dict[str, claims.Verdict]:
    return {v.claim.number: v for v in claims.evaluate(claims.load_runs(sweep))}


def test_a_clear_effect_holds_with_its_interval_around_it(tmp_path):
    narrow = [0.47, 0.48, 0.49, 0.50, 0.51, 0.52]  # width 1 at depth 2, seeds 0-5
    plant(tmp_path, {(2, 1, "tanh", "adam", 0.01): narrow, (2, 20, "tanh", "adam", 0.01): [0] * 6})
    found = decide(tmp_path)["1"]
    assert found.verdict == HOLDS
    interval = found.finding.found
    assert interval.estimate == pytest.approx(np.mean(narrow)) and interval.seeds == 6
    assert 0.47 <= interval.low < interval.estimate < interval.high <= 0.52
    assert found.finding.probability == 1.0  # every width-20 run beats every width-1 run


def _optimizers(tmp_path, adam: list[float], sgd: list[float]) -> claims.Verdict:
    cells = {}
    for depth, width in claims.CONFIGS:
        cells[(depth, width, "tanh", "adam", 0.01)] = adam
        cells[(depth, width, "tanh", "sgd", 0.01)] = sgd
    plant(tmp_path, cells, epochs=100)
    return decide(tmp_path)["7"]


def test_a_contradicted_claim_does_not_hold(tmp_path):
    # The report: Adam is better than SGD. Planted: SGD ends 0.3 lower on every seed.
    found = _optimizers(tmp_path, adam=[0.31, 0.30, 0.32, 0.29, 0.30, 0.31], sgd=[0.01] * 6)
    assert found.verdict == FAILS
    interval = found.finding.found
    assert interval.estimate == pytest.approx(0.01 - 0.305)
    assert interval.low <= interval.estimate <= interval.high < 0
    assert found.finding.probability == 0.0


def test_an_effect_within_the_noise_is_not_decided(tmp_path):
    noise = np.array([0.10, -0.10, 0.05, -0.05, 0.02, -0.02])
    found = _optimizers(tmp_path, adam=list(0.3 + noise), sgd=list(0.3 - noise))
    assert found.verdict == f"{UNDECIDED} at 6 seeds"
    interval = found.finding.found
    assert interval.estimate == pytest.approx(0) and interval.low < 0 < interval.high
    assert 0.3 < found.finding.probability < 0.7


def test_an_equal_effect_on_every_seed_has_a_zero_width_interval(tmp_path):
    plant(
        tmp_path,
        {(2, 1, "tanh", "adam", 0.01): [0.5] * 6, (2, 20, "tanh", "adam", 0.01): [0.1] * 6},
    )
    interval = decide(tmp_path)["1"].finding.found
    assert (interval.low, interval.estimate, interval.high) == pytest.approx((0.4, 0.4, 0.4))


def test_a_sweep_without_a_claims_runs_lists_it_as_not_tested(tmp_path, capsys):
    grid = {(d, w, "tanh", "adam", 0.01): [0.1] * 6 for d in claims.DEPTHS for w in claims.WIDTHS}
    plant(tmp_path, grid)
    assert claims.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(claims.CLAIMS) + 1  # one per claim, then where claims.csv is
    rows = {row["claim"]: row for row in claims.read_claims(tmp_path)}
    assert rows["1"]["verdict"] == FAILS  # planted: no width effect at all
    assert rows["7"]["verdict"] == claims.NOT_TESTED
    assert "model.optimizer=adam" in rows["7"]["missing"]
    assert "trainer.max_epochs>=100" in rows["7"]["missing"]
    assert "model.activation=relu" in rows["10b"]["missing"]
    seven = next(line for line in lines if line.startswith("claim 7:"))
    assert "not tested by this sweep" in seven and "experiment=claims" in seven


def test_a_sweep_that_tests_no_claim_says_so_in_one_line(tmp_path):
    plant(tmp_path, {(1, 3, "tanh", "adam", 0.01): [0.1] * 6})
    rows = [v.row() for v in decide(tmp_path).values()]
    assert all(row["verdict"] == claims.NOT_TESTED for row in rows)
    assert claims.claim_lines(rows) == [
        "claims: none tested by this sweep (python -m src.train -m experiment=claims tests all)"
    ]


def test_training_length_is_read_from_the_history_of_the_same_runs(tmp_path):
    # 100-epoch runs whose val_loss falls from 0.002 at epoch 25 to 0.001 at epoch 100.
    def history(epoch, seed):
        return 0.002 + 0.0001 * seed if epoch < 25 else 0.001 + 0.0001 * seed

    cells = {
        (d, w, "tanh", "adam", 0.01): [0.001 + 0.0001 * s for s in SEEDS] for d, w in claims.CONFIGS
    }
    plant(tmp_path, cells, epochs=100, history=history)
    found = decide(tmp_path)["9"]
    assert found.verdict == HOLDS  # 0.001 less: below the 0.01 the claim allows
    assert found.finding.found.estimate == pytest.approx(0.001)


def test_a_run_with_other_fixed_settings_is_not_read(tmp_path):
    cells = {(2, 1, "tanh", "adam", 0.01): [0.5] * 6, (2, 20, "tanh", "adam", 0.01): [0.1] * 6}
    plant(tmp_path, cells)
    rows = claims.read_results(tmp_path)
    for row in rows:
        row["data.noise"] = 0.3  # another problem than the report's
    write_results(tmp_path, rows)
    assert decide(tmp_path)["1"].verdict == claims.NOT_TESTED


@pytest.mark.parametrize(
    "side, low, high, expected",
    [
        (">", 0.2, 0.5, HOLDS),
        (">", -0.5, -0.2, FAILS),
        (">", -0.1, 0.3, UNDECIDED),
        ("<", -0.5, -0.2, HOLDS),
        ("<", 0.2, 0.5, FAILS),
        ("<", -0.1, 0.3, UNDECIDED),
    ],
)
def test_the_rule_compares_the_whole_interval_with_the_threshold(side, low, high, expected):
    assert verdict(Interval((low + high) / 2, low, high, 6), side, 0.0) == expected


def test_the_section_replaces_the_one_a_page_had():
    page = "<h1>x</h1>\n<h2>best</h2>"
    once = claims.insert_section(page, f"{claims.SECTION_START}A{claims.SECTION_END}")
    twice = claims.insert_section(once, f"{claims.SECTION_START}B{claims.SECTION_END}")
    assert once.index("</h1>") < once.index("A") < once.index("<h2>best") and "A" not in twice
    assert twice.count(claims.SECTION_START) == 1


def test_dead_units_are_the_relu_units_silent_on_every_sample():
    nets = [MLP(2, 4, "relu"), MLP(2, 4, "tanh")]
    with torch.no_grad():
        for net in nets:
            for layer in net.layers:
                layer.weight.fill_(1.0)
                layer.bias.fill_(1.0)
            net.layers[0].bias[:2] = -100.0  # two units of the first layer never fire
    x = torch.rand(50, 2)
    relu, tanh = dead_units(StackedMLP(nets[:1]), x), dead_units(StackedMLP(nets[1:]), x)
    assert relu == [[0.5, 0.0]] and tanh == [[0.0, 0.0]]
    assert dead_units(StackedMLP([MLP(0, 4, "relu")] * 2), x) == [[], []]  # no hidden layer


def test_a_results_file_the_claims_cannot_read_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("model.depth,seed\n2,0\n")  # no status column
    assert claims.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.csv cannot be read" in err
    assert claims.main([str(tmp_path / "nowhere")]) == 2
