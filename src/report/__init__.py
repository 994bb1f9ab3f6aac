"""What a sweep shows: results.csv, the figures and a page to read, in `<sweep>/report/`.

`results`: the job folders read into rows (results.csv); `grid`: the report laid out as the
grid, its page and its wandb run (`python -m src.report`); `views` turn it into figures drawn by
`figures`; `search`: a Bayesian search's views (`python -m src.search`); `callback`: the report
at the end of every multirun, drawn by the sweep's idle workers (`workers`).
"""
