"""A job's config composed once per kind of job (hydra_plugins/stacked_sweepers/composing.py)
is the config Hydra composes for it from scratch."""

from __future__ import annotations

import importlib
import pickle

import cloudpickle
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from .conftest import CONF

JOBS = [
    *(
        [f"model.depth={d}", f"model.width={w}", "++seeds=[0,1]", f"data={data}", "model.lr=0.1"]
        for d, data in ((0, "xor"), (1, "moons"), (3, "xor"))
        for w in (1, 5, 20)
    ),
    ["model.depth=1", "model.width=3", "seed=4", "model.activation=relu"],
    ["model.depth=2", "model.width=7", "seed=5", "model.activation=gelu"],
    ["model.depth=2", "model.width=7", "seed=5", "+model.extra=1"],
    ["model.depth=4", "model.width=7", "seed=6", "+model.extra=2"],
]


@pytest.fixture
def hydra_loader():
    """The master config, Hydra's loader and the composing module as Hydra's plugin scan left
    it (the scan imports hydra_plugins anew: a class imported before it pickles by no name)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        master = compose("train", ["logger=none"], return_hydra_config=True)
        composing = importlib.import_module("hydra_plugins.stacked_sweepers.composing")
        composing._composed.clear()
        composing._groups.clear()
        composing._parsed.clear()
        yield master, GlobalHydra.instance().config_loader(), composing


def test_each_job_gets_the_config_hydra_composes(hydra_loader):
    master, loader, composing = hydra_loader
    cached = composing.CachedComposition(loader)
    for job in JOBS:
        ours = cached.load_sweep_config(master, job)
        hydras = loader.load_sweep_config(master, job)
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), job
    # A kind is composed by Hydra once: one per data set and seed stack, one per
    # seed-and-activation job shape, one per +key value (an add is no value override).
    assert len(composing._composed) == 2 + 1 + 2


def test_a_copy_is_not_shared_with_the_next_job(hydra_loader):
    master, loader, composing = hydra_loader
    cached = composing.CachedComposition(loader)
    first = cached.load_sweep_config(master, JOBS[0])
    first.model.width = 999
    second = cached.load_sweep_config(master, JOBS[1])
    assert (second.model.width, cached.load_sweep_config(master, JOBS[0]).model.width) == (5, 1)


def test_the_loader_travels_to_workers_without_its_configs(hydra_loader):
    master, loader, composing = hydra_loader
    cached = composing.CachedComposition(loader)
    cached.load_sweep_config(master, JOBS[0])
    copy = pickle.loads(cloudpickle.dumps(cached))  # as joblib and Dask send it
    assert copy.get_search_path() is not None and "_composed" not in vars(copy)
    config = copy.load_sweep_config(master, JOBS[1])
    assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(loader.load_sweep_config(master, JOBS[1]))
