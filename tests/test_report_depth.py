"""The report's depth views: gradient norms by layer, val_loss against the parameter count, and
facets (a third swept key drawn side by side), from fake sweeps made here (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from src.errors import ConfigError
from src.report import figures, views
from src.report.grid import CAPTIONS, REPORT_DIR, VIEWS, main, write_report
from src.report.layout import AUTO, build, choose_facet
from src.report.results import collect
from src.run.nets import MLP

from .test_report import is_png
from .test_results import make_sweep


def grad_norm(depth: int, layer: int, epoch: int, seed: int) -> float:
    """A fake norm that vanishes towards the input: a decade per layer below the output's,
    at the first epoch, two decades per layer by the last (epoch 3 of make_sweep's 4)."""
    return 0.1 * (1 + seed) * 10.0 ** (-(depth - layer) * (1 + epoch / 3))


def add_grad_norms(sweep: Path, only=lambda job: True) -> None:
    """Each finished job's history gets grad_norm/layer_<i> for i = 0..depth, as src.model
    writes them."""
    for path in sweep.rglob("metrics.json"):
        record = json.loads(path.read_text())
        if record["status"] == "failed" or not only(path.parent):
            continue
        depth, seed = record["config"]["model"]["depth"], record["config"]["seed"]
        for epoch in record["history"]:
            for i in range(depth + 1):
                epoch[f"grad_norm/layer_{i}"] = grad_norm(depth, i, epoch["epoch"], seed)
        path.write_text(json.dumps(record))


def recorder(monkeypatch, name: str) -> list[dict]:
    """Record the arguments each call of figures.<name> gets (it still draws)."""
    calls = []
    plot = getattr(figures, name)

    def wrapper(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        return plot(*args, **kwargs)

    monkeypatch.setattr(figures, name, wrapper)
    return calls


def test_the_new_figure_functions_draw_a_png(tmp_path):
    g = figures.GradNorms(np.array([1e-6, 1e-3, 0.1]), np.array([1e-9, 1e-5, 0.1]))
    s = figures.Series(
        np.array([9, 41, 100]), *np.array([[0.5, 0.1, 0.01], [0.4, 0.05, 0.009], [0.6, 0.2, 0.02]])
    )
    paths = [
        figures.plot_gradient_norms(
            {"depth=2": {"w=1": g, "w=2": g}, "depth=3": {"w=1": g}}, "w", "t", tmp_path / "g.png"
        ),
        figures.plot_params({"": {"depth=1": s}}, "x", "y", "depth", "t", tmp_path / "p.png"),
        figures.plot_params({"a": {"d": s}, "b": {"d": s}}, "x", "y", "d", "t", tmp_path / "q.png"),
    ]
    assert all(is_png(p) for p in paths)


def test_gradient_norms_are_the_geometric_mean_across_seeds_per_layer():
    histories = [
        [{f"grad_norm/layer_{i}": v * 10.0**i for i in range(3)} for v in (a, b)]
        for a, b in ((1e-6, 1e-8), (1e-4, 1e-2))
    ]
    g = views.grad_norms(histories)
    assert g.first == pytest.approx([1e-5 * 10.0**i for i in range(3)])  # sqrt(1e-6 * 1e-4)
    assert g.last == pytest.approx([1e-5 * 10.0**i for i in range(3)])  # sqrt(1e-8 * 1e-2)
    old = [[{"train_loss": 0.5}]]  # a run written before the gradient norms
    assert views.grad_norms(old) is None
    assert views.grad_norms(old + histories[:1]).first == pytest.approx([1e-6, 1e-5, 1e-4])
    assert views.grad_norms([[{"grad_norm/layer_0": 1.0}]]) is None  # depth 0: one layer
    garbled = [[{"grad_norm/layer_0": "x", "grad_norm/layer_1": 1e-2}]]  # a hand-edited record
    both = views.grad_norms(garbled + [[{"grad_norm/layer_0": 1e-4, "grad_norm/layer_1": 1e-4}]])
    assert both.first == pytest.approx([1e-4, 1e-3])  # its bad value left out of the mean


def test_gradient_and_params_figures_of_a_sweep(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path / "sweep", depths=(0, 2, 5), widths=(1, 10), seeds=(0, 1))
    add_grad_norms(sweep)
    grads = recorder(monkeypatch, "plot_gradient_norms")
    params = recorder(monkeypatch, "plot_params")
    out = write_report(sweep)
    assert is_png(out / "gradient_norms.png") and is_png(out / "params.png")
    page = (out / "index.html").read_text()
    for stem in ("gradient_norms", "params"):
        assert f'src="{stem}.png"' in page and f"<h2>{CAPTIONS[stem]}</h2>" in page

    (call,) = grads
    panels, legend, title = call["args"][:3]
    assert list(panels) == ["model.depth=2", "model.depth=5"]  # depth 0 has one layer only
    assert legend == "model.width" and "geometric mean across seeds" in title
    for depth in (2, 5):
        for width in (1, 10):
            g = panels[f"model.depth={depth}"][f"model.width={width}"]
            assert len(g.first) == len(g.last) == depth + 1
            first = [
                math.sqrt(grad_norm(depth, i, 0, 0) * grad_norm(depth, i, 0, 1))
                for i in range(depth + 1)
            ]
            assert g.first == pytest.approx(first)
            # The vanishing gradient: the input layer's norm decades below the output layer's.
            assert g.last[-1] / g.last[0] == pytest.approx(10.0 ** (2 * depth))

    (call,) = params
    panels = call["args"][0]
    assert list(panels) == [""]  # no facet: one panel
    lines = panels[""]
    assert list(lines) == ["model.depth=0", "model.depth=2", "model.depth=5"]
    results = [r for r in collect(sweep) if r["status"] == "ok"]
    for depth in (0, 2, 5):
        s = lines[f"model.depth={depth}"]
        widths = sorted(
            {(r["n_params"], r["model.width"]) for r in results if r["model.depth"] == depth}
        )
        assert s.x.tolist() == [n for n, _ in widths]  # a point per width, by n_params
        for (_, width), mean, lo, hi in zip(widths, s.mean, s.lo, s.hi):
            seeds = [
                r["val_loss"]
                for r in results
                if (r["model.depth"], r["model.width"]) == (depth, width)
            ]
            assert len(seeds) == 2
            assert (lo, mean, hi) == pytest.approx((min(seeds), np.mean(seeds), max(seeds)))
            assert 0 < lo <= mean <= hi


def test_no_gradient_norms_no_figure_and_old_runs_are_left_out(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path / "sweep", depths=(1, 3), widths=(1, 2), seeds=(0, 1))
    add_grad_norms(sweep, only=lambda job: job.name == "seed=0")  # seed 1: an older run
    grads = recorder(monkeypatch, "plot_gradient_norms")
    out = write_report(sweep)
    assert is_png(out / "gradient_norms.png")
    (call,) = grads
    assert "4 finished runs have no gradient norms, left out" in call["args"][2]
    g = call["args"][0]["model.depth=3"]["model.width=2"]
    assert g.first == pytest.approx([grad_norm(3, i, 0, 0) for i in range(4)])  # seed 0 only

    for path in sweep.rglob("metrics.json"):  # no run has gradient norms: no figure
        path.write_text(path.read_text().replace("grad_norm/", "old_norm/"))
    out = write_report(sweep)
    assert len(grads) == 1 and not (out / "gradient_norms.png").exists()  # the earlier one gone
    page = (out / "index.html").read_text()
    assert "gradient_norms" not in page and 'src="params.png"' in page


def facet_sweep(root: Path, key: str, facet_values, seeds=(0, 1), **kwargs) -> Path:
    """make_sweep once per value of `key`: a third swept key, in one sweep folder."""
    for value in facet_values:
        make_sweep(root, seeds=seeds, extra=(f"{key}={value}", "logger=none"), **kwargs)
    return root


def test_choose_facet_auto_explicit_and_refused(tmp_path):
    one = collect(facet_sweep(tmp_path / "one", "model.residual", ("false", "true")))
    assert choose_facet(one, "model.depth", "model.width", AUTO) == "model.residual"
    assert choose_facet(one, "model.depth", "model.width", "none") is None
    assert choose_facet(one, "model.depth", "model.width", None) is None
    assert choose_facet(one, "model.depth", "model.residual", AUTO) == "model.width"
    for bad in ("model.depth", "model.width", "seed", "logger", "model.nope"):
        with pytest.raises(ConfigError, match=f"--facet='{bad}' is not allowed"):
            choose_facet(one, "model.depth", "model.width", bad)
    # More than 4 values, or two extra keys: tuned away unless asked for.
    many = collect(
        facet_sweep(tmp_path / "many", "model.lr", (0.1, 0.2, 0.3, 0.4, 0.5), seeds=(0,))
    )
    assert choose_facet(many, "model.depth", "model.width", AUTO) is None
    assert choose_facet(many, "model.depth", "model.width", "model.lr") == "model.lr"
    two = tmp_path / "two"
    for norm in ("none", "layer"):
        for residual in ("false", "true"):
            make_sweep(two, seeds=(0,), extra=(f"model.norm={norm}", f"model.residual={residual}"))
    two_results = collect(two)
    assert choose_facet(two_results, "model.depth", "model.width", AUTO) is None
    assert choose_facet(two_results, "model.depth", "model.width", "model.norm") == "model.norm"
    report = build(two, facet="model.norm")
    assert report.tuned == ["model.residual"] and "best over model.residual" in report.context


def save_normed_models(sweep: Path, norm: str) -> None:
    """The models of the jobs with model.norm=<norm> as src.train saves them: with their norm
    layers (state dict names norms.<i>.*), residual, and the hparams that say so."""
    for path in sweep.glob(f"*model.norm={norm}*/seed=*/model.pt"):
        saved = torch.load(path, weights_only=True)
        h = {**saved["hparams"], "norm": norm, "residual": True}
        net = MLP(h["depth"], h["width"], h["activation"], 2, True, norm)
        torch.save({"hparams": h, "state_dict": net.state_dict()}, path)


def test_a_facet_draws_one_grid_per_value(tmp_path, monkeypatch):
    sweep = facet_sweep(tmp_path / "sweep", "model.norm", ("none", "batch"), depths=(1, 3))
    save_normed_models(sweep, "batch")  # the boundaries load them as the jobs trained them
    for path in sweep.glob("*model.norm=batch*/seed=*/metrics.json"):  # batch: half the loss
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "val_loss": record["val_loss"] / 2}))
    add_grad_norms(sweep)
    report = build(sweep, facet="model.norm")
    assert report.facet.key == "model.norm" and report.facet.values == ["batch", "none"]
    assert report.tuned == [] and report.context.startswith("one grid per model.norm;")
    for value, cells in report.grids.items():  # each facet's cells hold its own configurations
        assert [[g.config["model.norm"] for g in line] for line in cells] == [[value] * 2] * 2
        assert [[g.config["model.depth"] for g in line] for line in cells] == [[1, 1], [3, 3]]
    with pytest.raises(ValueError):
        report.cells  # noqa: B018  (only an unfaceted report has one grid)

    layouts = {}  # what each figure was drawn with: its axes' places, its texts

    def save(fig, path):
        boxes = [ax.get_position() for ax in fig.axes]
        layouts[Path(path).name] = (boxes, [t.get_text() for t in fig.texts])
        return original(fig, path)

    original = figures._save
    monkeypatch.setattr(figures, "_save", save)
    heat = recorder(monkeypatch, "plot_heatmaps")
    grid = recorder(monkeypatch, "plot_boundary_grid")
    curves = recorder(monkeypatch, "plot_curves")
    grads = recorder(monkeypatch, "plot_gradient_norms")
    params = recorder(monkeypatch, "plot_params")
    out = write_report(sweep)  # the only extra key, 2 values: a facet by default
    assert all(is_png(out / f"{stem}.png") for stem in CAPTIONS)

    mean, std, row, col, metric, title, _, notes, facets = heat[0]["args"]
    assert facets == ["model.norm=batch", "model.norm=none"] and mean.shape == (2, 2, 2)
    expected = [[[g.mean("val_loss") for g in line] for line in c] for c in report.grids.values()]
    assert mean == pytest.approx(np.array(expected))
    assert mean[0] == pytest.approx(mean[1] / 2)  # batch's losses: half of none's
    assert "one grid per model.norm" in title
    # Heat maps: means in a row, stds below, each with a colour bar: 2 x 2 panels, 4 bars.
    assert len(layouts["heatmap_val_loss.png"][0]) == 8
    # Boundaries: a block of depth x width panels per facet value, side by side, titled by it.
    boxes, texts = layouts["boundaries.png"]
    assert len(boxes) == 8 and set(facets) <= set(texts)
    left, right = boxes[:4], boxes[4:]  # the first block's panels, then the second's
    assert max(b.x1 for b in left) < min(b.x0 for b in right)
    assert len({round(b.y0, 3) for b in left}) == 2  # two rows (depths) in each block
    cells, *_, block_names = grid[0]["args"]
    assert block_names == facets and [len(c) for c in cells] == [2, 2]
    # Curves, gradient norms: a row of panels per depth, a panel per facet value.
    for calls in (curves, grads):
        panels, ncols = calls[0]["args"][0], calls[0]["args"][4]
        assert ncols == 2
        assert list(panels) == [f"model.depth={d}, {f}" for d in (1, 3) for f in facets]
    assert list(params[0]["args"][0]) == facets  # val_loss against n_params: a panel each
    page = (out / "index.html").read_text()
    assert "one grid per model.norm" in page

    # Tuned away when asked: one grid, each cell the best over model.norm.
    out = write_report(sweep, facet="none")
    assert heat[-1]["args"][8] == [""] and heat[-1]["args"][0].shape == (1, 2, 2)
    assert "best over model.norm" in (out / "index.html").read_text()


def test_workers_draw_the_faceted_report(tmp_path):
    from joblib import Parallel

    here = facet_sweep(tmp_path / "here", "model.residual", ("false", "true"), seeds=(0,))
    there = facet_sweep(tmp_path / "there", "model.residual", ("false", "true"), seeds=(0,))
    for sweep in (here, there):
        add_grad_norms(sweep)
    write_report(here)
    write_report(there, workers=Parallel(n_jobs=2, backend="loky"))
    page = (here / REPORT_DIR / "index.html").read_text()
    assert (there / REPORT_DIR / "index.html").read_text() == page.replace("here", "there")
    assert all(is_png(there / REPORT_DIR / f"{stem}.png") for stem in CAPTIONS)
    assert len(VIEWS) == 6


@pytest.mark.parametrize(
    "facet, message",
    [
        ("model.depth", "--facet='model.depth' is not allowed: none, or a swept key on neither"),
        ("seed", "--facet='seed' is not allowed"),
        ("model.lr", "a swept key on neither axis: model.residual"),
    ],
)
def test_cli_refuses_a_wrong_facet_in_one_line(tmp_path, capsys, facet, message):
    sweep = facet_sweep(tmp_path / "sweep", "model.residual", ("false", "true"), seeds=(0,))
    assert main([str(sweep), "--facet", facet]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_facet_option(tmp_path, capsys):
    sweep = facet_sweep(tmp_path / "sweep", "model.residual", ("false", "true"), seeds=(0,))
    args = ["--rows", "model.residual", "--cols", "model.width", "--facet", "model.depth"]
    assert main([str(sweep), *args]) == 0
    page = (sweep / REPORT_DIR / "index.html").read_text()
    assert "one grid per model.depth" in page
