"""The wandb side of the search: the sweep file for `wandb sweep`, and watched gradients."""

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from src.run.training import train, validate

from .conftest import CONF, wandb_history, wandb_records, wandb_run_info

SWEEP = yaml.safe_load((CONF / "wandb_sweep.yaml").read_text())


def sample_values(spec: dict) -> list:
    """Values the sweep can give a parameter: each choice, or the range's ends, or the value."""
    if "values" in spec:
        return spec["values"]
    if "distribution" in spec:
        return [spec["min"], spec["max"]]
    return [spec["value"]]


def test_the_sweep_file_is_the_reports_search():
    assert SWEEP["method"] == "bayes"
    assert SWEEP["metric"] == {"name": "val_loss", "goal": "minimize"}
    params = SWEEP["parameters"]
    assert params["model.depth"]["values"] == [1, 2, 3, 5]
    assert params["model.width"]["values"] == [5, 10, 20, 30]
    assert params["model.lr"] == {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}
    assert params["data.batch_size"]["values"] == [32, 64, 128]
    assert params["trainer.max_epochs"]["value"] == 50
    assert SWEEP["command"] == ["${env}", "python", "-m", "src.train", "${args_no_hyphens}"]


@pytest.mark.parametrize("pick", [0, -1])
def test_every_parameter_is_a_valid_override(make_cfg, pick):
    values = {name: sample_values(spec)[pick] for name, spec in SWEEP["parameters"].items()}
    # The arguments exactly as the wandb agent writes them for ${args_no_hyphens}.
    args = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    cfg = make_cfg(*args["args_no_hyphens"], tiny=False)
    validate(cfg)
    for name, value in values.items():
        if name != "logger":  # a config group: its choice is not a value in the config
            assert OmegaConf.select(cfg, name) == value, name
    assert cfg.logger.kind == "wandb"


def test_watching_logs_gradient_and_parameter_histograms(make_cfg):
    cfg = make_cfg("logger=wandb", "logger.watch=true", "data.batch_size=8")  # 16 steps
    assert cfg.logger.watch_log == "all" and cfg.logger.watch_log_freq == 10  # as the report
    assert not make_cfg("logger=wandb").logger.watch  # off unless asked: it costs time
    train(cfg)
    [record_file] = wandb_records(Path(cfg.output_dir) / "wandb")
    rows = wandb_history(record_file)
    histograms = {
        k.removesuffix("/_type"): row for row in rows for k in row if k.endswith("/_type")
    }
    for layer in ("net.layers.0.weight", "net.layers.0.bias", "net.layers.2.weight"):
        for kind in ("gradients", "parameters"):
            row = histograms[f"{kind}/{layer}"]
            assert row[f"{kind}/{layer}/_type"] == "histogram"
            assert sum(row[f"{kind}/{layer}/values"]) > 0, (kind, layer)  # counts, not empty
    assert wandb_run_info(record_file)["job_type"] == "train"
