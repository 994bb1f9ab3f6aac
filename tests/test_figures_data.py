"""What the report's figures show, read back from the drawn figures (matplotlib's artists) and
from what the views hand to src/report/figures.py, against numbers computed here from the
sweep's own files: a boundary's orientation, the std heat map's values, each facet's data."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.contour import ContourSet

from src.report import figures, views
from src.report.grid import write_report
from src.report.layout import build
from src.report.results import collect
from src.run.nets import mlp_from_hparams

from .test_report_depth import add_grad_norms, facet_sweep, recorder
from .test_results import make_sweep

# A net whose logit is a known function of its input, not symmetric in x0 and x1: high (red)
# where x0 is large, falling slowly with x1. Its 0.5 line is x0 = 0.375 + x1 / 4.
W0, W1, BIAS = 8.0, -2.0, -3.0


def logit(x0, x1):
    return W0 * np.asarray(x0) + W1 * np.asarray(x1) + BIAS


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def linear_sweep(root: Path) -> Path:
    """A sweep of depth-0 nets (one Linear), each with the weights of `logit`."""
    sweep = make_sweep(root, depths=(0,), widths=(1, 2), seeds=(0, 1))
    for path in sweep.rglob("model.pt"):
        saved = torch.load(path, weights_only=True)
        state = {"layers.0.weight": torch.tensor([[W0, W1]]), "layers.0.bias": torch.tensor([BIAS])}
        torch.save({**saved, "state_dict": state}, path)
    return sweep


def saved_figures(monkeypatch) -> dict[str, object]:
    """Every figure the report draws from now on, by its file's name (as it was saved)."""
    drawn = {}
    save = figures._save

    def recording(fig, path):
        drawn[Path(path).name] = fig
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", recording)
    return drawn


def drawn_value(image, x: float, y: float) -> float:
    """The value an AxesImage shows at the data point (x, y): from its array, its extent and its
    origin, the way imshow places them (row 0 at the bottom with origin "lower", else on top)."""
    array = np.ma.getdata(image.get_array())
    left, right, bottom, top = image.get_extent()
    rows, cols = array.shape
    fx, fy = (x - left) / (right - left), (y - bottom) / (top - bottom)
    j = min(int(fx * cols), cols - 1)
    i = min(int(fy * rows), rows - 1)
    return float(array[i if image.origin == "lower" else rows - 1 - i, j])


def mesh_points(extent, n: int = 9) -> list[tuple[float, float]]:
    """Points spread over the inside of an extent (x0, x1, y0, y1)."""
    xs = np.linspace(extent[0], extent[1], n + 2)[1:-1]
    ys = np.linspace(extent[2], extent[3], n + 2)[1:-1]
    return [(x, y) for x in xs for y in ys]


def check_drawn_boundary(ax, extent) -> None:
    """The panel shows sigmoid(logit) where it belongs: image and 0.5 line, in data coords."""
    [image] = ax.images
    assert image.get_extent() == pytest.approx(extent)
    assert ax.get_xlim() == pytest.approx(extent[:2]) and ax.get_ylim() == pytest.approx(extent[2:])
    points = mesh_points(extent)
    shown = np.array([drawn_value(image, x, y) for x, y in points])
    expected = sigmoid(np.array([logit(x, y) for x, y in points]))
    # Within a pixel's change of the function (mesh of 120: about 0.03 here).
    assert shown == pytest.approx(expected, abs=0.05)
    right = [v for (x, _), v in zip(points, shown) if x > 0.375 + extent[3] / 4 + 0.2]
    left = [v for (x, _), v in zip(points, shown) if x < 0.375 + extent[2] / 4 - 0.2]
    assert right and left and min(right) > 0.8 > 0.2 > max(left)  # red where x0 is large
    [line] = [c for c in ax.collections if isinstance(c, ContourSet)]
    vertices = np.concatenate([p.vertices for p in line.get_paths()])
    assert len(vertices) > 10
    assert np.abs(logit(vertices[:, 0], vertices[:, 1])).max() < 0.1  # on the 0.5 line


def test_a_boundary_is_the_nets_output_on_its_mesh(tmp_path):
    r = build(linear_sweep(tmp_path / "sweep"))
    b = views.boundary(r, r.ranked[0], "label")
    rows, cols = b.probs.shape
    x0 = np.linspace(b.extent[0], b.extent[1], cols)
    x1 = np.linspace(b.extent[2], b.extent[3], rows)
    # figures.Boundary: rows along x1 (y) from extent[2] up, columns along x0.
    assert b.probs == pytest.approx(sigmoid(logit(x0[None, :], x1[:, None])), abs=1e-5)
    assert b.probs[:, -1].min() > 0.9 and b.probs[:, 0].max() < 0.5  # high where x0 is large
    # The extent holds the data it was trained on; the validation points are drawn on top.
    splits = views.data_splits(r, r.records[r.run_of(r.ranked[0])["job_dir"]]["config"]["data"])
    assert b.x == pytest.approx(splits["val"][0]) and b.y == pytest.approx(splits["val"][1])
    points = np.concatenate([splits[s][0] for s in ("train", "val")])
    lo, hi = points.min(axis=0), points.max(axis=0)
    assert b.extent[0] < lo[0] < hi[0] < b.extent[1] and b.extent[2] < lo[1] < hi[1] < b.extent[3]


def test_a_drawn_boundary_shows_the_array_where_its_points_are(tmp_path, monkeypatch):
    drawn = saved_figures(monkeypatch)
    extent = (-0.5, 1.5, -1.0, 2.0)  # not square: x and y cannot trade places unseen
    n = 120
    x0, x1 = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    probs = sigmoid(logit(x0[None, :], x1[:, None]))
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = figures.Boundary(probs, extent, points, np.array([0.0, 1.0]), "label")
    row, col = figures.Axis("model.depth", [0]), figures.Axis("model.width", [1, 2])
    figures.plot_boundaries({"best": b}, "t", tmp_path / "big.png")
    figures.plot_boundary_grid([[b, None]], row, col, "t", tmp_path / "grid.png")
    check_drawn_boundary(drawn["big.png"].axes[0], extent)
    check_drawn_boundary(drawn["grid.png"].axes[0], extent)


def test_the_reports_boundaries_show_each_net_the_right_way_round(tmp_path, monkeypatch):
    drawn = saved_figures(monkeypatch)
    grid = recorder(monkeypatch, "plot_boundary_grid")
    write_report(linear_sweep(tmp_path / "sweep"))
    cells = [b for line in grid[0]["args"][0] for b in line]  # model.width down, one column
    panels = [ax for ax in drawn["boundaries.png"].axes if ax.images]
    assert len(panels) == len(cells) == 2
    for ax, b in zip(panels, cells):
        check_drawn_boundary(ax, b.extent)
    big = [ax for ax in drawn["boundaries_best_worst.png"].axes if ax.images]
    assert len(big) == 2
    for ax in big:
        check_drawn_boundary(ax, ax.images[0].get_extent())


def spread_sweep(root: Path, key: str | None = None, facet_values=(0,)) -> Path:
    """A sweep whose val_loss spreads across seeds by a different amount in every cell (and
    facet), so that a cell's std is neither constant nor its mean; one cell has a failed
    seed, one a single finished seed (no std). With a facet `key`, every value's runs differ
    from the others' in their final metrics, their histories and their gradient norms."""
    status = {(2, 1, 2): "failed", (0, 10, 1): "missing", (0, 10, 2): "missing"}
    if key is None:
        make_sweep(root, seeds=(0, 1, 2), status=status)
    else:
        facet_sweep(root, key, facet_values, seeds=(0, 1, 2), status=status)
        add_grad_norms(root)
    for row in collect(root):
        if row["status"] != "ok":
            continue
        path = root / row["job_dir"] / "metrics.json"
        record = json.loads(path.read_text())
        facet = facet_values.index(row[key]) if key else 0
        depth, width, seed = row["model.depth"], row["model.width"], row["seed"]
        spread = 0.01 * (1 + depth) * (1 + width / 10) * (1 + facet)
        record["val_loss"] = 0.3 * (1 + facet) / (1 + depth) + spread * seed**2
        record["val_accuracy"] = 0.9 - 0.05 * facet - 0.02 * seed * (1 + depth)
        for epoch in record["history"]:
            for name in epoch:
                if name.endswith("_loss") or name.startswith("grad_norm/"):
                    epoch[name] *= 1 + facet
        path.write_text(json.dumps(record))
    return root


def cell_stats(root: Path, metric: str, where: dict) -> tuple[float, float]:
    """The mean and std across seeds of one cell's finished runs, from results.csv's rows."""
    xs = [
        r[metric]
        for r in collect(root)
        if r["status"] == "ok" and all(r[k] == v for k, v in where.items())
    ]
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else np.nan)


def heat_panels(fig, stat: str) -> dict[str, object]:
    """The heat map panels of one statistic ("mean" or "std"), by their title."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title().startswith(f"{stat} ")}


def test_the_std_heat_map_shows_the_std_across_seeds(tmp_path, monkeypatch):
    sweep = spread_sweep(tmp_path / "sweep")
    drawn = saved_figures(monkeypatch)
    heat = recorder(monkeypatch, "plot_heatmaps")
    write_report(sweep)
    for call, metric in zip(heat, ("val_loss", "val_accuracy")):
        fig = drawn[f"heatmap_{metric}.png"]
        mean_arg, std_arg = call["args"][:2]
        [mean_ax] = heat_panels(fig, "mean").values()
        [std_ax] = heat_panels(fig, "std").values()
        assert std_ax.get_title() == f"std of {metric} across seeds"
        expected = np.array(
            [
                [cell_stats(sweep, metric, {"model.depth": d, "model.width": w}) for w in (1, 10)]
                for d in (0, 2)
            ]
        )  # (rows, cols, mean and std)
        means, stds = expected[..., 0], expected[..., 1]
        assert np.isnan(stds[0, 1]) and np.isfinite(stds).sum() == 3  # one seed: no std
        shown = std_ax.images[0].get_array()
        assert np.ma.getmaskarray(shown).tolist() == np.isnan(stds).tolist()
        assert np.ma.getdata(shown)[~np.isnan(stds)] == pytest.approx(stds[~np.isnan(stds)])
        # What the view handed to figures: one grid (no facet), the same numbers.
        assert std_arg.shape == mean_arg.shape == (1, 2, 2)
        assert std_arg[0] == pytest.approx(stds, nan_ok=True)
        assert np.ma.getdata(mean_ax.images[0].get_array()) == pytest.approx(means)
        assert mean_arg[0] == pytest.approx(means)
        assert not np.allclose(stds[~np.isnan(stds)], means[~np.isnan(stds)])
        # Each cell's text is its own value.
        texts = sorted(t.get_text() for t in std_ax.texts)
        assert texts == sorted([f"{s:.3g}" if np.isfinite(s) else "n/a" for s in stds.flat])


FACETS = (0.01, 0.1)  # model.lr: the facet's values, in its panels' order
DEPTHS, WIDTHS = (0, 2), (1, 10)


@dataclass
class Faceted:
    """A faceted sweep's report, drawn once: its finished runs, every figure drawn, and the
    arguments each figures.plot_* function got."""

    sweep: Path
    rows: list[dict]
    drawn: dict[str, object]
    calls: dict[str, list[dict]]

    def runs(self, facet, depth=None, width=None) -> list[dict]:
        where = {"model.lr": facet, "model.depth": depth, "model.width": width}
        return [r for r in self.rows if all(v is None or r[k] == v for k, v in where.items())]

    def histories(self, facet, depth, width) -> list[list[dict]]:
        return [
            json.loads((self.sweep / r["job_dir"] / "metrics.json").read_text())["history"]
            for r in self.runs(facet, depth, width)
        ]


@pytest.fixture(scope="module")
def faceted(tmp_path_factory) -> Faceted:
    sweep = spread_sweep(tmp_path_factory.mktemp("faceted") / "sweep", "model.lr", FACETS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        drawn = saved_figures(monkeypatch)
        names = ("plot_heatmaps", "plot_boundary_grid", "plot_curves", "plot_params")
        calls = {name: recorder(monkeypatch, name) for name in names}
        calls["plot_gradient_norms"] = recorder(monkeypatch, "plot_gradient_norms")
        write_report(sweep)  # model.lr: the only extra key, with 2 values: the facet
    rows = [r for r in collect(sweep) if r["status"] == "ok"]
    return Faceted(sweep, rows, drawn, calls)


@pytest.mark.parametrize("stat", ["mean", "std"])
def test_each_facets_heat_maps_show_its_own_cells(faceted, stat):
    panels = heat_panels(faceted.drawn["heatmap_val_loss.png"], stat)
    assert len(panels) == 2
    for facet in FACETS:
        [ax] = [ax for title, ax in panels.items() if title.endswith(f"model.lr={facet}")]
        where = [
            [{"model.lr": facet, "model.depth": d, "model.width": w} for w in WIDTHS]
            for d in DEPTHS
        ]
        expected = np.array(
            [
                [cell_stats(faceted.sweep, "val_loss", cell)[stat == "std"] for cell in line]
                for line in where
            ]
        )
        shown = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
        assert shown == pytest.approx(expected, nan_ok=True), facet


def test_each_facets_boundaries_are_its_own_nets(faceted):
    (cells, _, _, _, _, blocks) = faceted.calls["plot_boundary_grid"][0]["args"]
    assert blocks == [f"model.lr={f}" for f in FACETS]
    for facet, grid in zip(FACETS, cells):
        for depth, line in zip(DEPTHS, grid):
            for width, b in zip(WIDTHS, line):
                [run] = [r for r in faceted.runs(facet, depth, width) if r["seed"] == 0]
                saved = torch.load(faceted.sweep / run["job_dir"] / "model.pt", weights_only=True)
                net = mlp_from_hparams(saved["hparams"])
                net.load_state_dict(saved["state_dict"])
                n_rows, n_cols = b.probs.shape
                xs, ys = np.meshgrid(
                    np.linspace(b.extent[0], b.extent[1], n_cols),
                    np.linspace(b.extent[2], b.extent[3], n_rows),
                )
                mesh = torch.tensor(np.stack([xs.ravel(), ys.ravel()], 1), dtype=torch.float32)
                with torch.no_grad():
                    probs = torch.sigmoid(net(mesh)).reshape(n_rows, n_cols).numpy()
                assert b.probs == pytest.approx(probs, abs=1e-5), (facet, depth, width)


def test_each_facets_learning_curves_are_its_own_runs(faceted):
    curves = faceted.calls["plot_curves"][0]["args"][0]
    assert list(curves) == [f"model.depth={d}, model.lr={f}" for d in DEPTHS for f in FACETS]
    for facet in FACETS:
        for depth in DEPTHS:
            for width in WIDTHS:
                histories = faceted.histories(facet, depth, width)
                c = curves[f"model.depth={depth}, model.lr={facet}"][f"model.width={width}"]
                val = np.array([[e["val_loss"] for e in h] for h in histories])
                train = np.array([[e["train_loss"] for e in h] for h in histories])
                assert c.val_mean == pytest.approx(val.mean(axis=0))
                assert c.train_hi == pytest.approx(train.max(axis=0))


def test_each_facets_gradient_norms_are_its_own_runs(faceted):
    grads = faceted.calls["plot_gradient_norms"][0]["args"][0]
    assert list(grads) == [f"model.depth=2, model.lr={f}" for f in FACETS]  # depth 0: one layer
    for facet in FACETS:
        for width in WIDTHS:
            histories = faceted.histories(facet, 2, width)
            g = grads[f"model.depth=2, model.lr={facet}"][f"model.width={width}"]
            for got, epoch in ((g.first, 0), (g.last, -1)):
                norms = np.array(
                    [[h[epoch][f"grad_norm/layer_{i}"] for i in range(3)] for h in histories]
                )
                assert got == pytest.approx(np.exp(np.log(norms).mean(axis=0)))


def test_each_facets_params_panel_is_its_own_runs(faceted):
    params = faceted.calls["plot_params"][0]["args"][0]
    assert list(params) == [f"model.lr={f}" for f in FACETS]
    for facet in FACETS:
        for depth in DEPTHS:
            s = params[f"model.lr={facet}"][f"model.depth={depth}"]
            runs = [[r["val_loss"] for r in faceted.runs(facet, depth, w)] for w in WIDTHS]
            assert s.mean == pytest.approx([np.mean(x) for x in runs])
            assert s.lo == pytest.approx([np.min(x) for x in runs])
