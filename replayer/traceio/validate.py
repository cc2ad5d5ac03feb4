"""What a trace's contents must be, checked where they enter: the reader.

A CRC proves the bytes are the ones written, not that the writer wrote the
right thing. Everything after the reader (the fold, the reports, the UI)
relies on these checks instead of guarding each use: a header of plain,
finite data with sane sizes; rows whose common columns and fields have the
types the vocabulary gives them (:data:`replayer.vocab.FIELD_TYPES`) and values
that fit the engine's int64 and uint16 columns.

Row checks run per kind and per column in C (``map``/``set``/``min``/``max``
over a transposed column), never a Python loop per event: O(rows × fields).
"""

from __future__ import annotations

import math
from array import array
from functools import partial
from itertools import chain
from operator import is_not, itemgetter
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import CorruptTrace
from ..vocab import N_COMMON

_NONE = type(None)
_not_none = partial(is_not, None)
I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)
MAX_CPUS = 1 << 16            # CPU columns are uint16

#: type code → (Python types admitted, range of the ints, or None). Booleans count
#: as the integers 0 and 1, as they do in Python (and for ``array``).
_INT = {int, bool}
_SCALAR = {
    "u64": (_INT, U64),
    "i64": (_INT, I64),
    "pfn": (_INT, (0, (1 << 63) - 1)),     # the table log stores pfns as int64
    "count": (_INT, (0, (1 << 32) - 1)),
    "pid": (_INT, (0, (1 << 32) - 1)),
    "level": (_INT, (0, 255)),
    "cpu": (_INT, (0, MAX_CPUS - 1)),
    "str": ({str}, None),
    "flag": ({bool}, None),
}
#: Arrays: the element type code.
_ARRAY = {"cpus": "cpu", "pfns": "pfn"}


def column_error(values: tuple | list, code: str) -> str | None:
    """Why ``values`` do not all have type ``code`` (``"u64"``, ``"str?"``, ...), or None.

    O(n) in C: one ``set(map(type, ...))`` and, for ints, one ``min`` and ``max``.
    The exact (slower) check; :func:`fast_check` makes the fast one for the usual case.
    """
    if code == "any":
        return None
    nullable = code.endswith("?")
    base = code.rstrip("?")
    seen = set(map(type, values))
    if nullable:
        seen.discard(_NONE)
    if base in _ARRAY:
        if not seen <= {tuple}:
            return f"is not an array ({_names(seen - {tuple})})"
        elements = chain.from_iterable(filter(_not_none, values) if nullable else values)
        inner = column_error(tuple(elements), _ARRAY[base])
        return None if inner is None else f"holds a value that {inner}"
    admitted, bounds = _SCALAR[base]
    if not seen <= admitted:
        return f"is {_names(seen - admitted)}, not {base}"
    if bounds is None or not seen:
        return None
    ints = list(filter(_not_none, values)) if nullable else values
    lo, hi = min(ints), max(ints)
    if lo < bounds[0] or hi > bounds[1]:
        bad = lo if lo < bounds[0] else hi
        return f"value {bad} is outside {bounds[0]}..{bounds[1]}"
    return None


def fast_check(code: str) -> Callable[[list], bool]:
    """A test that is True when a column surely has type ``code``; False means "ask
    :func:`column_error`" (which also says why). One C pass: ``array`` refuses
    anything but ints within 64 bits (a nil too: it goes the exact way), numpy
    checks a narrower range; ``set(map(type, ...))`` for strings and flags."""
    base = code.rstrip("?")
    if base in _ARRAY:
        return _arrays_check(_ARRAY[base], code.endswith("?"))
    if base not in _SCALAR:
        return (lambda values: True) if code == "any" else (lambda values: False)
    admitted, bounds = _SCALAR[base]
    if bounds is None:
        allowed = admitted | {_NONE} if code.endswith("?") else admitted
        return lambda values: set(map(type, values)) <= allowed
    typecode, limit = ("q", None) if bounds[0] < 0 else \
        ("Q", None if bounds[1] >= U64[1] else bounds[1])

    nullable = code.endswith("?")

    def ints(values: list) -> bool:
        try:
            column = array(typecode, values)
        except TypeError:
            if not nullable:
                return False
            try:         # nil aside (a pid column holds the kernel's, nil)
                column = array(typecode, filter(_not_none, values))
            except (TypeError, OverflowError):
                return False
        except OverflowError:
            return False
        return limit is None or not column or \
            int(np.frombuffer(column, np.uint64).max()) <= limit
    return ints


def _arrays_check(element: str, nullable: bool) -> Callable[[list], bool]:
    """:func:`fast_check` of a column of arrays: every value an array (or nil when
    ``nullable``), then their elements together as one column of ``element``."""
    inner = fast_check(element)
    admitted = {tuple, _NONE} if nullable else {tuple}

    def arrays(values: list) -> bool:
        if not set(map(type, values)) <= admitted:
            return False
        return inner(list(chain.from_iterable(filter(_not_none, values) if nullable
                                              else values)))
    return arrays


def _names(types: set) -> str:
    return "/".join(sorted("nil" if t is _NONE else t.__name__ for t in types))


_PID_OK = fast_check("pid?")


class RowChecks:
    """The checks of one file's rows, compiled from its kind table.

    :meth:`columns` checks the four common columns and returns the numpy ones;
    :meth:`fields` checks every typed field, per kind. Each column costs an
    extraction and one C pass (see :func:`fast_check`); only a column that fails
    it pays for the exact check, to say why. O(rows × fields).
    """

    def __init__(self, types_of: dict[int, tuple[str, ...]]) -> None:
        self._fields = {kind: [(itemgetter(N_COMMON + j), j, code, fast_check(code))
                               for j, code in enumerate(types) if code != "any"]
                        for kind, types in types_of.items()}

    @staticmethod
    def columns(rows: tuple) -> tuple[np.ndarray, np.ndarray, array]:
        """``(kinds uint16, cpus uint16, time deltas array('q'))`` after checking the
        common columns (kind, dts, cpu: ints; pid: int or nil). Raises ValueError."""
        out = []
        for name, at, code, typecode in (("kind", 0, "cpu", "H"), ("time delta", 1, "i64", "q"),
                                         ("cpu", 2, "cpu", "H")):
            column = list(map(itemgetter(at), rows))
            try:
                out.append(array(typecode, column))
            except (TypeError, OverflowError):
                raise ValueError(f"an event's {name} {column_error(column, code)}") from None
        pids = list(map(itemgetter(3), rows))
        if not _PID_OK(pids) and column_error(pids, "pid?"):
            raise ValueError(f"an event's pid {column_error(pids, 'pid?')}")
        return np.frombuffer(out[0], np.uint16), np.frombuffer(out[2], np.uint16), out[1]

    def fields(self, rows: tuple, kinds: np.ndarray) -> str | None:
        """The first field whose values break its kind's type, in words, or None.
        Rows must already have their kind's length."""
        for kind in np.unique(kinds).tolist():
            checks = self._fields.get(kind)
            if not checks:
                continue
            at = np.flatnonzero(kinds == kind).tolist()
            group = itemgetter(*at)(rows) if len(at) > 1 else (rows[at[0]],)
            for field, j, code, ok in checks:
                column = list(map(field, group))
                if not ok(column):
                    why = column_error(column, code)
                    if why:
                        return f"kind {kind} field {j} {why}"
        return None


    def columns_error(self, pids: Any, fields: dict[int, list]) -> str | None:
        """:meth:`fields` for a v2 chunk's columns (:class:`.columns.Column`): an
        integer column by its ``min`` and ``max`` in numpy, a dictionary by its
        distinct values, an array as v1 checks one. O(rows × fields), in C."""
        why = _column_type_error(pids, "pid?", _PID_OK)
        if why:
            return f"an event's pid {why}"
        for kind, columns in fields.items():
            for _, j, code, ok in self._fields.get(kind, ()):
                why = _column_type_error(columns[j], code, ok)
                if why:
                    return f"kind {kind} field {j} {why}"
        return None


#: numpy type char → (least, greatest) value an integer column of it holds.
_STORED_RANGE = {c: (int(np.iinfo(c).min), int(np.iinfo(c).max)) for c in "bBhHiIlLqQ"}


def _column_type_error(column: Any, code: str, ok: Callable[[list], bool] | None = None
                       ) -> str | None:
    if code == "any":
        return None
    if column.ints is not None:
        base = code.rstrip("?")
        if base not in _SCALAR or _SCALAR[base][1] is None:
            return f"is int, not {base}"
        bounds = _SCALAR[base][1]
        if not len(column.ints):
            return None
        # Only the ends the stored type could put outside the bounds are looked at.
        stored = _STORED_RANGE[column.ints.dtype.char]
        lo = int(column.ints.min()) if stored[0] < bounds[0] else bounds[0]
        hi = int(column.ints.max()) if stored[1] > bounds[1] else bounds[1]
        if lo < bounds[0] or hi > bounds[1]:
            return f"value {lo if lo < bounds[0] else hi} is outside {bounds[0]}..{bounds[1]}"
        return None
    base = code.rstrip("?")
    if column.form == "struct":
        return None if base == "any" else f"is map, not {base}"
    if column.form == "words":        # its words are strings, so its values are
        return None if base in ("any", "str") else f"is str, not {base}"
    # A dictionary column: its dictionary holds every value (the writer keeps no
    # unused entry, and one is checked all the same).
    values = column.values
    if ok is not None and ok(list(values)):
        return None
    return column_error(values, code)


def comm_error(pairs: tuple) -> str | None:
    """``[pid, comm, ...]``: pids int or nil in range, comms strings."""
    pids = list(pairs[::2])
    if not _PID_OK(pids) and column_error(pids, "pid?"):
        return "a comm's pid is not a pid"
    if not set(map(type, pairs[1::2])) <= {str}:
        return "a comm is not a string"
    return None


# -- the header -----------------------------------------------------------------
_HEADER_TYPES = {"source": (str,), "clock": (str,), "arch": (dict,), "kernel": (dict,)}
_ARCH_SIZES = ("page_size", "pte_size", "ptrs_per_pte", "pte_table_bytes",
               "pmd_table_bytes", "levels")


def check_header(header: dict[str, Any], path: str) -> None:
    """Raise :class:`CorruptTrace` unless the header is plain data with sane values.

    Plain data: maps with string keys, arrays, strings, booleans, nil, integers
    within 64 bits and finite floats — what JSON can say, so every report and
    converter can pass it on. No binary: a header describes, it does not carry.
    """
    where = "header"
    problem = _plain_data_error(header, "header", 0)
    if problem:
        raise CorruptTrace(problem, path, where)
    for key, kinds in _HEADER_TYPES.items():
        value = header.get(key)
        if value is not None and not isinstance(value, kinds):
            raise CorruptTrace(f"header {key!r} is a {type(value).__name__}, not a "
                               f"{kinds[0].__name__}", path, where)
    cpus = header.get("cpus")
    if cpus is not None and not (type(cpus) is int and 0 <= cpus <= MAX_CPUS):
        raise CorruptTrace(f"header 'cpus' is {cpus!r}, not a count of 0..{MAX_CPUS}",
                           path, where)
    arch = header.get("arch") or {}
    for key in _ARCH_SIZES:
        value = arch.get(key)
        if value is not None and not (type(value) is int and 0 < value <= 1 << 30):
            raise CorruptTrace(f"header arch {key!r} is {value!r}, not a size of "
                               f"1..{1 << 30}", path, where)


def _plain_data_error(value: Any, at: str, depth: int) -> str | None:
    if depth > 32:
        return f"{at} nests too deep"
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        return None if I64[0] <= value <= U64[1] else f"{at} is beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{at} is {value}, not a finite number"
    if isinstance(value, tuple):
        return _first(_plain_data_error(v, f"{at}[{i}]", depth + 1)
                      for i, v in enumerate(value))
    if isinstance(value, dict):
        return _first(_plain_data_error(v, f"{at}.{k}", depth + 1) for k, v in value.items()
                      ) if all(isinstance(k, str) for k in value) else f"{at} has a non-string key"
    return f"{at} is {type(value).__name__} data, which a header may not hold"


def _first(problems: Iterable[str | None]) -> str | None:
    return next(filter(None, problems), None)
