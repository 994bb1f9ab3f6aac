"""A sweep of runs (`python -m src.train -m`): what its sweeper checks and records, and its jobs.

`preflight`: the checks, and the sweep's folder opened with its plan (.sweep.json); `jobs`: the
records of a job's seeds; `runs`: their wandb runs, in `<sweep>/wandb/`; `progress`: a job's
line when it ends; `summary`: the count by status at the end; `lock`: one writer per sweep
folder; `lifetime`: signals and a full disk; `space`: the search's space, `pruning` its trials;
`worker`: a Hydra job in a worker process; `cluster`: Dask workers as batch jobs.
"""
