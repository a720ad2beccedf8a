"""Markdown tables: the one writer behind the studies' ``study.md``, ``compare.md`` and the
benchmarks' tables, so that every table the project prints has the same shape."""

from __future__ import annotations

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
