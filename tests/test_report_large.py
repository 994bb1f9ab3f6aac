"""A large grid's report (thousands of job folders written here, no training): every figure
under a pixel cap, each drawing a bounded number of cells, panels and lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib.image
import pytest
import torch

from src.report import figures, views
from src.report.grid import write_report
from src.report.layout import spread
from src.run.nets import MLP

from .test_report_depth import recorder
from .test_results import DATA, job_record

DEPTHS = range(5)
LRS = [round(0.0001 * (1 + i), 4) for i in range(400)]  # 400 values: 2,000 configurations
MAX_PX = 2500  # a figure's largest side, in pixels


def counting_texts(patch, saved: list) -> None:
    """Record each figure's file name and the texts drawn in its axes (a heat map prints a
    cell's value as a text) and its axes' tick labels along x, as it is saved."""
    save = figures._save

    def counting(fig, path):
        axes = [ax for ax in fig.axes if ax.get_xlabel()]  # not the colour bars
        ticks = [len(ax.get_xticklabels()) for ax in axes]
        saved.append((Path(path).name, sum(len(ax.texts) for ax in fig.axes), ticks))
        return save(fig, path)

    patch.setattr(figures, "_save", counting)


def large_sweep(root: Path) -> Path:
    """5 depths x 400 learning rates, one seed each: job folders as Hydra and the sweep write
    them (overrides, metrics.json, and one small model.pt per depth, linked into its jobs)."""
    (root).mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for depth in DEPTHS:
        net = MLP(depth, 3)
        hparams = {"depth": depth, "width": 3, "activation": "tanh", "in_features": 2}
        model = root / f"model{depth}.pt"
        torch.save({"hparams": hparams, "state_dict": net.state_dict()}, model)
        for i, lr in enumerate(LRS):
            overrides = [f"model.depth={depth}", f"model.lr={lr}", "seed=0"]
            job = root / f"model.depth={depth},model.lr={lr}" / "seed=0"
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
            (job / "model.pt").symlink_to(model)
            loss = 0.7 / (1 + depth) + 0.1 * abs(i - 200) / 200
            config = {"seed": 0, "model": {**hparams, "lr": lr}, "data": DATA}
            record = job_record("ok", loss, 3, config, 25)
            (job / "metrics.json").write_text(json.dumps(record))
    return root


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """The large sweep's report, drawn once: its folder, each figure's calls, the texts and
    ticks of each figure saved, and the seconds it took."""
    sweep = large_sweep(tmp_path_factory.mktemp("large") / "sweep")
    saved: list = []
    with pytest.MonkeyPatch.context() as patch:
        calls = {
            name: recorder(patch, name)
            for name in ("plot_heatmaps", "plot_boundary_grid", "plot_curves", "plot_params")
        }
        counting_texts(patch, saved)
        start = time.perf_counter()
        out = write_report(sweep, cols="model.lr")
        seconds = time.perf_counter() - start
    return out, calls, saved, seconds


def test_every_figure_is_under_the_pixel_cap_in_bounded_time(large):
    out, _, _, seconds = large
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"heatmap_val_loss.png", "boundaries.png", "params.png"}
    for png in pngs:
        height, width = matplotlib.image.imread(png).shape[:2]
        assert max(height, width) <= MAX_PX, (png.name, width, height)
    assert seconds < 300  # generous: a report of 1,000 cells once took many minutes


def test_the_heat_maps_print_no_value_and_few_ticks_on_the_long_axis(large):
    mean, _, row, col = large[1]["plot_heatmaps"][0]["args"][:4]
    assert mean.shape == (1, 5, 400) and len(col.values) == 400  # every cell is drawn
    heat = [(texts, ticks) for name, texts, ticks in large[2] if name.startswith("heatmap")]
    assert [texts for texts, _ in heat] == [0, 0]  # no cell is large enough for its value
    assert all(1 < n <= 30 for _, ticks in heat for n in ticks)  # of the 400 values


def test_the_boundaries_draw_evenly_spaced_cells_and_say_so(large):
    [call] = large[1]["plot_boundary_grid"]
    cells, row, col, title = call["args"][:4]
    assert len(row.values) == 5 and len(col.values) == views.BOUNDARY_COLS
    assert col.values[0] == LRS[0] and col.values[-1] == LRS[-1]
    assert col.values == [LRS[i] for i in spread(len(LRS), views.BOUNDARY_COLS)]
    assert sum(cell is not None for line in cells for cell in line) == 5 * views.BOUNDARY_COLS
    assert f"{views.BOUNDARY_COLS} of the 400 values of model.lr, evenly spaced" in title


def test_curves_and_params_thin_their_lines(large):
    [curves] = large[1]["plot_curves"]
    panels = curves["args"][0]
    assert len(panels) == 5 and all(len(lines) == views.LINES for lines in panels.values())
    assert f"{views.LINES} of the 400 values of model.lr" in curves["args"][2]
    [params] = large[1]["plot_params"]
    (lines,) = params["args"][0].values()
    assert len(lines) == 5 and all(len(s.x) == 400 for s in lines.values())  # every point


def test_a_small_grids_heat_map_prints_every_value_and_tick(tmp_path):
    row, col = figures.Axis("model.depth", list(range(7))), figures.Axis("model.width", [1, 2])
    saved: list = []
    with pytest.MonkeyPatch.context() as patch:
        counting_texts(patch, saved)
        values = torch.rand(7, 2).numpy()
        figures.plot_heatmaps(values, values, row, col, "val_loss", "t", tmp_path / "h.png")
    assert saved == [("h.png", 2 * 14, [2, 2])]  # mean and std: every value, every tick


def test_spread_keeps_the_ends_and_at_most_the_count():
    assert spread(5, 8) == [0, 1, 2, 3, 4]
    assert spread(200, 12)[0] == 0 and spread(200, 12)[-1] == 199 and len(spread(200, 12)) == 12
    gaps = {b - a for a, b in zip(spread(1000, 10), spread(1000, 10)[1:])}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced
