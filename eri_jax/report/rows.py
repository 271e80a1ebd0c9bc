"""The row mapping: which run folders fill which report row (`default_rows.json`, overridable by `--rows`).

A run row is `{"label": ..., "runs": [glob, ...], "where": {attribute: value}}`: globs relative to the
runs folder, and attributes the run must have (see runs.py for where they come from). A fusion row is
`{"label": ..., "fusion": [row, row, ...], "per_emotion": true}` over Table 3 rows. A user file passed
with `--rows` is merged over the defaults: its rows of table3 / table4 / table6 replace or add rows of
the same key (`null` removes one); its `table5`, `figures` and `paired` replace the defaults whole.
"""
from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

RUN_TABLES = ("table3", "table4", "table6")


def _default() -> dict[str, Any]:
    text = resources.files("eri_jax.report").joinpath("default_rows.json").read_text()
    return json.loads(text)


def paper_results() -> dict[str, Any]:
    """The seed paper's numbers (Tables 2–6, figure captions), shipped as `paper_results.json`."""
    return json.loads(resources.files("eri_jax.report").joinpath("paper_results.json").read_text())


def _check_row(where: str, key: str, row: Any, table: str) -> None:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: {table}.{key} must be an object, got {type(row).__name__}")
    if "fusion" in row:
        if table != "table3":
            raise ValueError(f"{where}: {table}.{key}: fusion rows belong to table3")
        members = row["fusion"]
        if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
            raise ValueError(f"{where}: {table}.{key}.fusion must list at least two table3 row keys")
        return
    globs = row.get("runs")
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) and g for g in globs):
        raise ValueError(f"{where}: {table}.{key}.runs must be a non-empty list of glob patterns")
    for g in globs:
        if Path(g).is_absolute() or ".." in Path(g).parts:
            raise ValueError(f"{where}: {table}.{key}.runs: {g!r} must be relative to the runs folder")
    if not isinstance(row.get("where", {}), dict):
        raise ValueError(f"{where}: {table}.{key}.where must be an object of attribute: value")


def validate(rows: dict[str, Any], where: str = "rows") -> dict[str, Any]:
    """Check the structure (ValueError naming `where` and the entry); return `rows`."""
    for table in RUN_TABLES:
        if not isinstance(rows.get(table), dict):
            raise ValueError(f"{where}: {table} must be an object of row key: row")
        for key, row in rows[table].items():
            _check_row(where, key, row, table)
    t3 = rows["table3"]
    for key, row in t3.items():
        for m in row.get("fusion", []):
            if m not in t3 or "fusion" in t3[m]:
                raise ValueError(f"{where}: table3.{key} fuses {m!r}, which is not a run row of table3")
    if not isinstance(rows.get("table5"), dict) or not all(isinstance(v, str) for v in rows["table5"].values()):
        raise ValueError(f"{where}: table5 must map paper column keys to table3 row keys")
    fig = rows.get("figures")
    if (not isinstance(fig, dict) or not isinstance(fig.get("methods"), dict)
            or not isinstance(fig.get("emotions"), list)):
        raise ValueError(f"{where}: figures must be {{\"methods\": {{name: table3 row}}, \"emotions\": [...]}}")
    pairs = rows.get("paired")
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ValueError(f"{where}: paired must be a list of [row_a, row_b] pairs")
    for ref in [*rows["table5"].values(), *fig["methods"].values(), *(r for p in pairs for r in p)]:
        if ref not in t3:
            raise ValueError(f"{where}: {ref!r} is not a table3 row (rows: {', '.join(t3)})")
    return rows


def load_rows(path: str | Path | None = None) -> dict[str, Any]:
    """The default mapping, merged with the JSON file at `path` when given (module docstring)."""
    rows = _default()
    rows.pop("_doc", None)
    if path is None:
        return validate(rows, "default_rows.json")
    path = Path(path)
    try:
        user = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"rows file {path} not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(user, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    unknown = sorted(set(user) - {*RUN_TABLES, "table5", "figures", "paired", "_doc"})
    if unknown:
        allowed = ", ".join((*RUN_TABLES, "table5", "figures", "paired"))
        raise ValueError(f"{path}: unknown entries {unknown}; allowed: {allowed}")
    merged = copy.deepcopy(rows)
    for table in RUN_TABLES:
        for key, row in (user.get(table) or {}).items():
            if row is None:
                merged[table].pop(key, None)
            else:
                merged[table][key] = row
    for key in ("table5", "figures", "paired"):
        if key in user:
            merged[key] = user[key]
    return validate(merged, str(path))
