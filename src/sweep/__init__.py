"""A sweep of runs (`python -m src.train -m`): what Hydra's launchers run, checked and counted.

`preflight`: the checks and the plan before the first job (launcher settings, resume into the
same sweep only); `jobs`: one job, the seeds of one configuration trained as one stack and
written one folder each; `runs`: their wandb runs, all in `<sweep>/wandb/`, and their ids;
`progress`: its line when it ends; `summary`: the count by status at the end; `lock`: one writer
per sweep folder; `lifetime`: signals and a full disk; `space`: the Bayesian search's space,
`pruning` its trials; `worker`: a Hydra job in a worker process; `cluster`: Dask workers as
batch jobs. The sweepers and launchers themselves are Hydra plugins: hydra_plugins/.
"""
