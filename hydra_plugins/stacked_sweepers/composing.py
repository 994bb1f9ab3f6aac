"""Each job's config composed once per kind of job, not once per job (Hydra's takes ~0.2 s).

A kind is a job's overrides less its scalar values (so a job that could compose differently is
composed by Hydra); a later job of a kind gets a copy of the first's config, its values set as
Hydra sets them.
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
# Per process, kept across a worker's jobs (src/sweep/worker.py installs Hydra's state once; a
# reinstall would re-import this module and empty them).
_composed: dict[tuple, tuple[DictConfig, bytes]] = {}  # the config, pickled
_groups: dict[tuple, set[str]] = {}
_parsed: dict[tuple, tuple[Override, bool]] = {}


class CachedComposition:
    """Hydra's config loader, its `load_sweep_config` composing each kind of job once; pickled
    with the launcher's context, the composed configs staying in each process."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "__setstate__"):  # while unpickling
            raise AttributeError(name)
        return getattr(self.loader, name)

    def _parse(self, path: tuple[str, ...], text: str) -> tuple[Override, bool]:
        """The override, and whether it sets a scalar value of a key (not a group, not Hydra's)."""
        if (path, text) not in _parsed:
            if path not in _groups:
                _groups[path] = config_groups(self.loader)
            (override,) = OverridesParser.create(config_loader=self.loader).parse_overrides([text])
            key = override.key_or_group
            value = (
                not (override.is_add() or override.is_delete() or override.is_force_add())
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
        path = tuple(str(p) for p in self.loader.get_search_path().get_path())
        parsed = [self._parse(path, text) for text in sweep_overrides]
        values = [o for o, value in parsed if value]
        kind = tuple(
            ("value", o.key_or_group) if value else ("line", o.input_line) for o, value in parsed
        )
        parsed = [o for o, _ in parsed]
        hydra = master_config.hydra
        key = (hydra.job.config_name, path, os.getcwd(), tuple(hydra.overrides.hydra), kind)
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
