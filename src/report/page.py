"""The report's pages in HTML, a grid's (grid.py) and a search's (study.py): the sweep's name,
tables, figures under their captions, and the page around them."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from src.report.results import writing


def sweep_name(sweep_dir: Path) -> str:
    """How the report names its sweep: relative to the folder the command ran in when it lies
    under it, else by the sweep folder's own name; never by an absolute path (a report is
    moved, shared and committed)."""
    path = Path(sweep_dir).resolve()
    try:
        relative = path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path.name
    return relative.as_posix() if relative.parts else path.name


def table(head: list[Any], rows: Iterable[list[Any]]) -> str:
    """A table: the header row, then one row per line of `rows`, every cell escaped."""
    lines = [("th", head)] + [("td", row) for row in rows]
    html_rows = (
        "<tr>" + "".join(f"<{tag}>{html.escape(str(x))}</{tag}>" for x in line) + "</tr>"
        for tag, line in lines
    )
    return "<table>\n" + "\n".join(html_rows) + "\n</table>"


def images(paths: list[Path], captions: dict[str, str]) -> str:
    """Each figure under its caption as a heading (its file's stem where it has none)."""
    return "\n".join(
        f'<h2>{captions.get(p.stem, p.stem)}</h2>\n<img src="{p.name}" alt="{p.stem}">'
        for p in paths
    )


def write(path: Path, title: str, heading: str, body: str, width: int, css: str = "") -> Path:
    """Write the page `path`: `title` in the browser's tab, `heading` above `body` (html);
    `width`: the page's in pixels; `css`: rules after the shared ones (the head then closes on
    a line of its own)."""
    more = f"{css}</style>\n" if css else "</style>"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:{width}px;margin:2em auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
img{{max-width:100%}}{more}</head><body>
<h1>{heading}</h1>
{body}
</body></html>
"""
    with writing(path):
        path.write_text(page)
    return path
