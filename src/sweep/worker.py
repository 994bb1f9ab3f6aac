"""A Hydra job in a sweep's worker process (a joblib worker here, a Dask worker on a cluster).

Hydra's launchers send each job the whole Hydra state and reinstall it (0.1 s a job, and the
re-import empties composing.py's caches): here it is pickled once, into a file each worker
installs once, and `run_hydra_job` copies the Hydra config once, not four times (10 ms each).
"""

from __future__ import annotations

import functools
import logging
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
        """The context of a launcher Hydra has set up, with this process's Hydra state."""
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
    """One Hydra job; `plain`: its result's configs plain, for a process without the plugins."""
    from omegaconf import OmegaConf, open_dict

    context = _installed(Path(context_file))
    loader = context.hydra_context.config_loader
    config = loader.load_sweep_config(context.config, list(overrides))
    with open_dict(config.hydra.job):
        batch_job = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")
        config.hydra.job.id = batch_job or f"{config.hydra.job.name}_{number}"
        config.hydra.job.num = number
    result = run_hydra_job(context, config)
    for name in ("cfg", "hydra_cfg") if plain else ():
        setattr(result, name, OmegaConf.create(OmegaConf.to_container(getattr(result, name))))
    return result


def run_hydra_job(context: Context, config: Any) -> Any:
    """Hydra's `run_job` for a sweep's job (the same order, files, callbacks and JobReturn),
    copying the Hydra config once, not four times: nothing else holds this job's config."""
    from hydra import version
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, env_override
    from omegaconf import OmegaConf, open_dict, read_write

    hydra_config = HydraConfig.instance()
    previous, old_cwd = hydra_config.cfg, os.getcwd()
    # HydraConfig.get() is then config.hydra, as after set_config, which would copy it first
    # (the sweep's folders and the job's output_dir read it: ${hydra:...}).
    hydra_config.cfg = config
    OmegaConf.set_readonly(config.hydra, True)
    sweep = config.hydra.sweep
    output_dir = os.path.abspath(os.path.join(str(sweep.dir), str(sweep.subdir)))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    chdir = config.hydra.job.chdir
    if chdir is None:  # unset: into the job's folder for apps of Hydra's version base before 1.2
        chdir = not version.base_at_least("1.2")
    try:
        task_cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        OmegaConf.set_struct(task_cfg, OmegaConf.is_struct(config))
        OmegaConf.copy_cache(from_config=config, to_config=task_cfg)
        hydra_cfg = OmegaConf.masked_copy(config, "hydra")  # the one copy: the result's own
        result = JobReturn(cfg=task_cfg, hydra_cfg=hydra_cfg,
                           overrides=list(config.hydra.overrides.task))  # fmt: skip
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        result.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            records = Path(output_dir) / str(config.hydra.output_subdir)
            records.mkdir(parents=True, exist_ok=True)
            for name, part in (("config", task_cfg), ("hydra", result.hydra_cfg),
                               ("overrides", config.hydra.overrides.task)):  # fmt: skip
                OmegaConf.save(part, records / f"{name}.yaml")
        callbacks = context.hydra_context.callbacks
        with env_override(config.hydra.job.env_set):
            callbacks.on_job_start(config=config, task_function=context.task_function)
            try:
                result.return_value = context.task_function(task_cfg)
                result.status = JobStatus.COMPLETED
            except Exception as error:
                result.return_value, result.status = error, JobStatus.FAILED
        result.task_name = JobRuntime.instance().get("name")
        for handler in logging.getLogger().handlers:
            handler.flush()
        callbacks.on_job_end(config=config, job_return=result)
        return result
    finally:
        hydra_config.cfg = previous
        if chdir:
            os.chdir(old_cwd)


def joblib_settings(launcher: dict[str, Any]) -> dict[str, Any]:
    """joblib.Parallel's arguments, as Hydra's joblib launcher makes them (loky; numbers given
    as text read as numbers): equal settings find loky's same reusable pool of workers."""
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
