"""The one exception the layout readers raise for bad input."""
from __future__ import annotations

from pathlib import Path


class LayoutError(ValueError):
    """A dataset on disk that cannot be read as the layout says.

    `path` is the file (or folder) at fault and `line` the 1-based line number in that file, counting
    the header as line 1 (so the first data row of a file without blank lines is line 2); either is
    None where it does not apply. The message always starts with them, e.g.
    ``data/labels.csv, line 7: label 'Fear' is 1.4, outside [0, 1]``.
    """

    def __init__(self, problem: str, path: str | Path | None = None, line: int | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        self.line = line
        where = "" if path is None else str(path)
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}" if where else problem)
