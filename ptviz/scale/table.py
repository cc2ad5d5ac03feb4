"""The table of rows: Parquet for analysis (pandas, polars, DuckDB), JSON Lines or CSV,
chosen by the output's extension; written atomically, read back for ``--resume``.

Columns: the point's own first (``point`` or ``trace`` is the key), then ``error`` and
``fail_on``, then :data:`ptviz.scale.row.METRICS`, then ``seconds``. Every row has every
column (empty where it has no value), so a failed point is a row like the others.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Iterable

from replayer.errors import BadInput, UsageError
from replayer.traceio.atomic import AtomicOutput

from .executors import NEEDS_EXTRA
from .row import METRICS

FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".csv": "csv"}
_TAIL = ("error", "fail_on") + METRICS + ("seconds",)
#: Columns that hold numbers (CSV keeps only text: these are turned back on reading).
_NUMBERS = frozenset(METRICS) - {"warnings", "counts_trusted"} | {"seconds", "seed", "cpus"}


def table_format(path: str) -> str:
    """The format ``path``'s extension names; a .parquet one needs pyarrow."""
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise UsageError(f"-o {path}: expected a table ending in .parquet, .jsonl or .csv")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(NEEDS_EXTRA.format(what="a .parquet table")) from None
    return fmt


def columns(rows: Iterable[dict]) -> list[str]:
    """Every column of ``rows`` in table order. O(rows × columns)."""
    seen = dict.fromkeys(c for row in rows for c in row)
    return [c for c in seen if c not in _TAIL] + [c for c in _TAIL if c in seen]


def write_table(path: str, rows: list[dict], force: bool) -> None:
    """Write ``rows`` to ``path`` in its format; the file appears whole or not at all.
    O(rows × columns)."""
    fmt = table_format(path)
    names = columns(rows)
    with AtomicOutput(path, force) as out:
        try:
            if fmt == "parquet":
                _write_parquet(out.file, rows, names)
            elif fmt == "jsonl":
                import orjson
                for row in rows:
                    out.file.write(orjson.dumps({c: row.get(c) for c in names}) + b"\n")
            else:
                text = io.TextIOWrapper(out.file, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(names)
                writer.writerows([_cell(row.get(c)) for c in names] for row in rows)
                text.flush()
                text.detach()
        except OSError as exc:
            raise out.error(exc) from None


def _cell(value: Any) -> Any:
    return "" if value is None else "true" if value is True else "false" \
        if value is False else value


def _write_parquet(file, rows: list[dict], names: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    data = {c: [row.get(c) for row in rows] for c in names}
    pq.write_table(pa.table(data) if rows else pa.table({c: [] for c in names}), file)


def read_table(path: str, key: str) -> list[dict]:
    """The rows of a table this module wrote (``--resume``), each with its ``key``
    column. Raises :class:`BadInput` naming the file for anything else."""
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            rows = _read_parquet(path)
        elif fmt == "jsonl":
            rows = _read_jsonl(path)
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = [{k: _typed(k, v) for k, v in row.items()} for row in csv.DictReader(f)]
    except UnicodeDecodeError as exc:
        raise BadInput(f"not a table ptviz wrote ({exc.reason})", path) from None
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get(key), str):
            raise BadInput(f"not a table of this command: no {key!r} column", path,
                           f"row {n}")
    return rows


def _read_parquet(path: str) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, ValueError) as exc:
        raise BadInput(f"not a Parquet table ({' '.join(str(exc).split())[:200]})",
                       path) from None


def _read_jsonl(path: str) -> list[dict]:
    import orjson
    rows = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                raise BadInput("not a JSON Lines table row", path, f"line {n}") from None
    return rows


def _typed(column: str, text: str | None) -> Any:
    """A CSV cell back to its value: empty is null; number columns are numbers."""
    if text is None or text == "":
        return None
    if column == "counts_trusted":
        return text == "true"
    if column in _NUMBERS:
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


def ordered(rows: dict[str, dict], keys: list[str], earlier: list[str]) -> list[dict]:
    """The rows to write: those of ``keys`` (this run's points) in their order, then
    rows an earlier table had for other points, in its order."""
    out = [rows[k] for k in keys if k in rows]
    wanted = set(keys)
    return out + [rows[k] for k in earlier if k not in wanted and k in rows]
