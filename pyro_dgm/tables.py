"""Markdown tables: the one writer behind the studies' ``study.md``, ``compare.md`` and the
benchmarks' tables, so that every table the project prints has the same shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A markdown table with the column titles ``header`` and one line per row of ``rows``
    (each cell written with ``str``), ending in a newline."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(cell) for cell in row]
        if len(cells) != len(header):
            raise ValueError(f"a table row has {len(cells)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def published_table(value_title: str, published: Iterable[tuple[str, str, str]],
                    title: str = "published (full MNIST)") -> str:
    """The published numbers a benchmark prints beside its own: rows of
    ``(model, value, source)``."""
    return markdown_table([title, value_title, "source"], published)


def write_tables(out, rows: list[dict], report: str) -> None:
    """A benchmark's results in the folder ``out``: ``table.json`` (the rows) and ``table.md``
    (``report``, also printed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "table.md").write_text(report)
    print(report)
