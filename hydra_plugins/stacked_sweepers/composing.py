"""Each job's config composed once per kind of job, not once per job.

Hydra composes every job's config from scratch (defaults list, config files, merges): about
0.2 s a job on 2 cores, most of a tiny training's share of a sweep. Jobs of a grid differ only
in the values of a few keys: `CachedComposition.load_sweep_config` composes the first job of
each kind with Hydra, then gives every later job of that kind a copy with its own values set
as Hydra sets them (the same `apply_override`), its own `hydra.overrides.task` and
`hydra.job.override_dirname`. A kind is the job's overrides with the values of its scalar
value overrides left out; config-group choices, `+`/`++`/`~` overrides and lists are part of
it, so any job that could compose differently is composed by Hydra.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from .overrides import apply_override, config_groups, keeps_shape

MAX_KINDS = 256  # composed configs kept by a process (a sweep has a few kinds)
MAX_PARSED = 100_000  # overrides kept parsed by a process
# Per process, so that a worker keeps them across jobs (src/sweep/worker.py installs Hydra's
# state once a worker: a reinstall re-imports this module, which would empty them): the
# composed configs, the config groups of each search path, and each override parsed (by
# search path and text: whether it is a value override, and the Override).
_composed: dict[tuple, tuple[DictConfig, bytes]] = {}  # the config, pickled
_groups: dict[tuple, set[str]] = {}
_parsed: dict[tuple, tuple[Override, bool]] = {}


class CachedComposition:
    """Hydra's config loader, its `load_sweep_config` composing each kind of job once; every
    other attribute is the loader's own. Pickled with the launcher's context (local, SLURM):
    the composed configs stay in each process (`_composed`)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "__setstate__"):  # while unpickling
            raise AttributeError(name)
        return getattr(self.loader, name)

    def _search_path(self) -> tuple[str, ...]:
        return tuple(str(p) for p in self.loader.get_search_path().get_path())

    def _parse(self, path: tuple[str, ...], text: str) -> tuple[Override, bool]:
        """The override, and whether it is a scalar value override of a key of the config
        (not a group, not Hydra's)."""
        if (path, text) not in _parsed:
            if path not in _groups:
                _groups[path] = config_groups(self.loader)
            (override,) = OverridesParser.create(config_loader=self.loader).parse_overrides([text])
            plain = not (override.is_add() or override.is_delete() or override.is_force_add())
            key = override.key_or_group
            value = (
                plain
                and override.package is None
                and key not in _groups[path]
                and not key.startswith("hydra.")
                and not isinstance(override.value(), (dict, list))
            )
            if len(_parsed) >= MAX_PARSED:
                _parsed.clear()
            _parsed[(path, text)] = (override, value)
        return _parsed[(path, text)]

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        path = self._search_path()
        parsed = [self._parse(path, text) for text in sweep_overrides]
        values = [o for o, value in parsed if value]
        kind = tuple(
            ("value", o.key_or_group) if value else ("line", o.input_line) for o, value in parsed
        )
        parsed = [o for o, _ in parsed]
        hydra = master_config.hydra
        key = (
            hydra.job.config_name,
            path,
            os.getcwd(),
            tuple(hydra.overrides.hydra),
            kind,
        )
        cached = _composed.get(key)
        if cached is None or not all(keeps_shape(cached[0], o) for o in values):
            cfg = self.loader.load_sweep_config(master_config, list(sweep_overrides))
            if len(_composed) >= MAX_KINDS:
                _composed.clear()
            try:
                pickled = pickle.dumps(cfg)
            except pickle.PicklingError:
                # Its classes were replaced by a re-import of the plugins: Hydra's own launchers
                # reinstall its state, so re-import them, for every job (a cache is no use then).
                return cfg
            _composed[key] = (pickle.loads(pickled), pickled)
            return cfg
        cfg = pickle.loads(cached[1])  # a copy, in a sixth of a deep copy's time
        for override in values:
            apply_override(cfg, override)
        task = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in task]
        settings = cfg.hydra.job.config.override_dirname
        lines = sorted(o.input_line for o in task if o.key_or_group not in settings.exclude_keys)
        # as Hydra writes it: the sorted overrides, joined by item_sep, "=" as kv_sep
        cfg.hydra.job.override_dirname = settings.item_sep.join(lines).replace("=", settings.kv_sep)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg
