"""A CSV file read whole with the csv module, every row kept with the line it starts on."""
from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from pathlib import Path

from tfds_hume.layouts.errors import LayoutError


@dataclasses.dataclass
class Row:
    """One data row: the 1-based line it starts on (header = line 1) and its cells, stripped."""

    line: int
    cells: list[str]


@dataclasses.dataclass
class Table:
    """Header and rows of one CSV file; every row has exactly as many cells as the header."""

    path: Path
    header: list[str]
    rows: list[Row]

    def find(self, names: Iterable[str]) -> str | None:
        """The header column whose name is one of `names` (case-insensitive), or None."""
        wanted = {n.lower() for n in names}
        for column in self.header:
            if column.lower() in wanted:
                return column
        return None

    def require(self, names: Iterable[str], what: str) -> str:
        """Like `find`, but a missing column is a LayoutError naming the accepted names."""
        names = tuple(names)
        column = self.find(names)
        if column is None:
            raise LayoutError(
                f"no {what} column in the header {self.header}; expected one of {list(names)}",
                self.path, 1)
        return column

    def index(self, column: str) -> int:
        return self.header.index(column)


def _lines(path: Path):
    """The rows of `path` with the line each starts on, turning read errors into LayoutErrors."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            start = 1
            for cells in reader:
                yield start, cells
                start = reader.line_num + 1
    except FileNotFoundError:
        raise LayoutError("file not found", path) from None
    except IsADirectoryError:
        raise LayoutError("is a folder, expected a CSV file", path) from None
    except OSError as e:
        raise LayoutError(f"cannot read: {e.strerror or e}", path) from None
    except UnicodeDecodeError as e:
        raise LayoutError(f"not UTF-8 text ({e.reason} at byte {e.start})", path) from None
    except csv.Error as e:
        raise LayoutError(f"malformed CSV: {e}", path, start) from None


def read_header(path: Path) -> list[str]:
    """Only the header of `path` (for layout detection), checked like `read_table` checks it."""
    for line, cells in _lines(path):
        if any(c.strip() for c in cells):
            return _check_header(path, line, cells)
    raise LayoutError("file is empty, expected a header row", path)


def read_table(path: Path) -> Table:
    """Read `path`: header names must be non-empty and unique (case-insensitive); each data row must
    have as many cells as the header. Rows whose cells are all empty (blank lines, ",,,") are skipped."""
    header = None
    rows: list[Row] = []
    for line, cells in _lines(path):
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = _check_header(path, line, cells)
            continue
        if len(cells) != len(header):
            more = "more" if len(cells) > len(header) else "fewer"
            raise LayoutError(
                f"row has {len(cells)} cells, {more} than the {len(header)} columns of the header "
                f"{header}", path, line)
        rows.append(Row(line, [c.strip() for c in cells]))
    if header is None:
        raise LayoutError("file is empty, expected a header row", path)
    return Table(path, header, rows)


def _check_header(path: Path, line: int, cells: list[str]) -> list[str]:
    header = [c.strip() for c in cells]
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if not name:
            raise LayoutError(
                f"header column {i} has no name (a trailing comma, or a column of unnamed values?)",
                path, line)
        if name.lower() in seen:
            raise LayoutError(
                f"header column {i} {name!r} repeats column {seen[name.lower()]}", path, line)
        seen[name.lower()] = i
    return header
