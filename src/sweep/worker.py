"""A Hydra job in a sweep's worker process (a joblib worker here, a Dask worker on a cluster).

Hydra's own launchers send each job the whole Hydra state (its config store, the sweep's
config, the config loader) and reinstall it, which rescans and re-imports every Hydra plugin:
about 0.1 s a job on 2 cores, and the re-import empties the per-process caches of the job
configs (hydra_plugins/stacked_sweepers/composing.py). Here the state is pickled once into a
file that the workers read and install once; a job is then its config and Hydra's `run_job`.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path
from typing import Any


class Context:
    """What a worker needs to run a Hydra job as a launcher would."""

    def __init__(self, hydra_context, config, task_function, singleton_state) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.task_function, self.singleton_state = task_function, singleton_state

    @classmethod
    def of(cls, launcher: Any) -> Context:
        """The Hydra context of a launcher that Hydra has set up, this process's state with it."""
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        setup_globals()
        return cls(launcher.hydra_context, launcher.config, launcher.task_function,
                   Singleton.get_state())  # fmt: skip

    def save(self, path: Path) -> Path:
        import cloudpickle  # the task function may be defined in __main__

        path.write_bytes(cloudpickle.dumps(self))
        return path


@functools.cache
def _installed(path: Path) -> Context:
    """The context saved at `path`, its Hydra state installed in this process (once)."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    context = pickle.loads(path.read_bytes())
    Singleton.set_state(context.singleton_state)
    setup_globals()
    return context


def run_job(context_file: Path, number: int, overrides: list[str], plain: bool = False) -> Any:
    """One Hydra job: its config loaded with its overrides, then Hydra's `run_job`, as Hydra's
    own launchers do. `plain`: the result's configs made plain, for a process that cannot
    import the plugins' config classes."""
    from hydra.core.utils import run_job as hydra_run_job
    from omegaconf import OmegaConf, open_dict

    context = _installed(Path(context_file))
    loader = context.hydra_context.config_loader
    config = loader.load_sweep_config(context.config, list(overrides))
    with open_dict(config.hydra.job):
        config.hydra.job.id = batch_job_id() or f"{config.hydra.job.name}_{number}"
        config.hydra.job.num = number
    result = hydra_run_job(
        hydra_context=context.hydra_context,
        task_function=context.task_function,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    for name in ("cfg", "hydra_cfg") if plain else ():
        setattr(result, name, OmegaConf.create(OmegaConf.to_container(getattr(result, name))))
    return result


def batch_job_id() -> str:
    """The batch job this process runs in, as the batch system names it ('' outside one)."""
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or ""


def joblib_settings(launcher: dict[str, Any]) -> dict[str, Any]:
    """joblib.Parallel's arguments for `hydra/launcher=joblib`'s settings, made as Hydra's
    joblib launcher makes them (loky, the only backend that works with Hydra; numbers given as
    text read as numbers): equal settings find loky's same reusable pool of workers."""
    settings = {k: v for k, v in launcher.items() if k != "_target_"}
    settings["backend"] = "loky"
    for key in ("pre_dispatch", "batch_size", "max_nbytes"):
        value = settings.get(key)
        if isinstance(value, str) and value.isdigit():
            settings[key] = int(value)
    return settings


def run_local_job(context_file: Path, number: int, overrides: list[str], main_pid: int) -> Any:
    """run_job in a worker of this machine's pool, which dies with the sweep's main process."""
    from src.sweep.lifetime import die_with_parent

    die_with_parent(main_pid)
    return run_job(context_file, number, overrides)
