"""What a sweep shows: results.csv, the figures and a page to read, in `<sweep>/report/`.

`results` reads the job folders, `layout` lays them out as the grid, `grid` writes its page (and
wandb run) and `views` its figures, drawn by `figures`; `study` is a search's report; `page` is
both pages' HTML; `claims` (with `evidence`, `claim_figures`) tests the course report's
conclusions; `callback` writes the report at the end of a multirun, with the sweep's idle `workers`.
"""
