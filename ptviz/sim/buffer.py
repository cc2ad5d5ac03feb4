"""The machine's events not yet written, turned into columns (machine.py).

Events come one at a time as a row (``(ts, cpu, kind, task, fields)``), or as records
of eleven ints in a flat list (:data:`RECORD`): the common events, whose fields are ints,
strings of a short table and nils. A record is a run of ``count`` identical events at a
fixed ``step`` after ``t0`` (pte_set: 83% of a fault-heavy workload's events; any other
event is a run of one), or a group of two or three events (:data:`GROUPS`: a walker's
session, an IPI's handling). ``pos`` is the rows emitted before it. Records are spread into columns
with numpy and their fields go to the writer as columns (fieldcodes.Table's packed
kind): an event then costs a few ns instead of two tuples, two transposes and value by
value conversions (~400 ns), and no tuple is kept alive for it.
"""

from __future__ import annotations

from array import array
from typing import Sequence

import numpy as np

from replayer import vocab as v
from replayer.traceio.columns import transpose
from replayer.traceio.fieldcodes import Coded, Same, Table

#: Columns of events in emission order: ts, cpus, kinds, tasks (int64 arrays), fields
#: (a fieldcodes.Coded).
Part = tuple
#: A record in the flat list: ``count`` events of ``kind`` ``step`` ns apart after
#: ``t0`` (one event: ``t0, 0, 1``), their fields made of ``a`` .. ``d`` by FIELDS.
RECORD = ("pos", "t0", "step", "count", "cpu", "task", "kind", "a", "b", "c", "d")
WIDTH = len(RECORD)
POS, T0, STEP, COUNT, CPU, TASK, KIND, A, B, C, D = range(WIDTH)
#: Groups (no event has kind 0 or 254): ``count`` events, the first at ``t0``, the
#: second (when there are 3) at GROUP_NS after it, the last at ``step``. A walker's
#: session: walk_begin (mm ``a``, walker ``b``, protect ``c``), walk_table of pfn ``d``,
#: walk_end. An IPI's handling on its target: ipi_enter (reason ``a``), the handler's
#: remote TLB flush of mm ``b`` (reason ``c``), ipi_exit.
WALK, IPI = 0, 254
#: Faults into a table that had some of their entries (no event has kind 255): ``count``
#: faults ``c`` ns each from ``t0``, ``step`` at a time, the new entries' bits the
#: ``d``-th of the masks given to close (bit 0: the first fault). Each batch that adds
#: an entry is a pte_set (mm ``a``, pfn ``b``, the entries it adds) stamped when its
#: faults are done (the last one, partial or not, when they all are).
MASK = 255

# How each recorded kind's fields are made: ("u", col) an int column that may pass 2**63
# (an mm), ("i", col) an int64 one, ("s", col) a value coded in the machine's table (a
# string, a tuple of CPUs), ("o", col) one of the objects given to close (a tuple of pfns:
# one an event, not worth a code), ("z",) zero, ("n",) nil.
_MM, _NIL, _ZERO = ("u", A), ("n",), ("z",)
FIELDS: dict[int, tuple[tuple, ...]] = {
    v.PTE_SET: (_MM, ("i", B), ("i", C), _NIL),
    v.PTE_CLEAR: (_MM, ("i", B), ("i", C), _NIL),
    v.TABLE_ALLOC: (_MM, ("i", B), ("i", C), ("i", D), _NIL),
    v.TABLE_DETACH: (_MM, ("i", B), ("s", C), _NIL),
    v.TABLE_QUEUE: (("i", A), ("s", B), _NIL),
    v.TABLE_FREE: (("i", A), ("s", B), _NIL),
    v.TABLE_SYNC_END: (("s", A),),
    v.TLB_FLUSH: (_MM, _ZERO, _ZERO, _ZERO, ("s", B)),
    v.IPI_ENTER: (("s", A),),
    v.IPI_EXIT: (("s", A),),
    v.RCU_GP_START: (("i", A),),
    v.RCU_GP_END: (("i", A),),
    v.RCU_INVOKE: (("i", A),),
    v.ZAP_BEGIN: (_MM, ("i", B), ("i", C), ("s", D), _NIL),
    v.ZAP_END: (_MM, ("i", B), ("i", C), ("s", D), _NIL),
    v.MM_EXIT: (_MM,),
    v.IPI_SEND: (("s", A), ("s", B), ("s", C)),
    v.RCU_QUEUE: (("i", A), ("s", B), ("o", C)),
    v.TABLE_SYNC_BEGIN: (("s", A), ("s", B)),
}
#: Each group's events: (kind, fields) first, second, last.
GROUPS: dict[int, tuple[tuple[int, tuple], ...]] = {
    WALK: ((v.WALK_BEGIN, (_MM, ("s", B), ("s", C))), (v.WALK_TABLE, (("i", D),)),
           (v.WALK_END, ())),
    IPI: ((v.IPI_ENTER, (("s", A),)), (v.TLB_FLUSH, (("u", B), _ZERO, _ZERO, _ZERO, ("s", C))),
          (v.IPI_EXIT, (("s", A),))),
}
GROUP_NS = {WALK: 100, IPI: 200}


def int64(values: Sequence[int]) -> np.ndarray:
    return np.frombuffer(array("q", values), np.int64)


def _column(spec: tuple, cols: list[np.ndarray], mine: np.ndarray, strings: np.ndarray,
            objects: np.ndarray) -> np.ndarray | Same:
    """A field column of the records at ``mine``, as FIELDS says it is made."""
    what = spec[0]
    if what == "n":
        return Same(None, len(mine))
    if what == "z":
        return np.zeros(len(mine), np.int64)
    col = cols[spec[1]][mine]
    if what == "u":
        return col
    if what == "i":
        return col.astype(np.int64)
    return (strings if what == "s" else objects)[col.astype(np.intp)]


def close(rows: list[tuple], recs: list[int], strings: Sequence = (),
          masks: Sequence[int] = (), objects: Sequence = ()) -> Part:
    """The rows and the records among them (``recs``, flat; their strings coded in
    ``strings``, MASK records' bits in ``masks``, other fields in ``objects``) as one
    part, in emission order; its fields coded into the rows' tuples and the records'
    columns."""
    if rows:
        ts, cpus, kinds, tasks, fields = transpose(rows)
        ts, cpus, kinds, tasks = int64(ts), int64(cpus), int64(kinds), int64(tasks)
    else:
        ts = cpus = kinds = tasks = np.zeros(0, np.int64)
        fields = []
    if not recs:
        return ts, cpus, kinds, tasks, Coded(np.arange(len(ts)), Table(fields, kinds))
    # Every value is an int in 0 .. 2**64-1 (an mm is above 2**63): one conversion.
    flat = np.frombuffer(array("Q", recs), np.uint64).reshape(-1, WIDTH)
    cols = [flat[:, i] for i in range(WIDTH)]
    if masks:
        cols = _batches(cols, masks)
    pos, t0, step, count, cpu, task, kind = (cols[i].astype(np.int64)
                                             for i in (POS, T0, STEP, COUNT, CPU, TASK, KIND))
    # fromiter: a list of tuples would be a 2-d array.
    strings, objects = (np.fromiter(x, object, len(x)) for x in (strings, objects))
    code, groups, entries, entry_kinds, packed = _entries(cols, kind, count, fields, kinds,
                                                          strings, objects)
    ends = np.cumsum(count)
    starts = ends - count                       # record events before each record
    # Where each event goes in emission order: row r after the records emitted before it
    # (pos <= r), record i's events after its pos rows and the earlier records' events.
    rows_at = np.arange(len(ts)) + np.r_[0, ends][np.searchsorted(pos, np.arange(len(ts)),
                                                                  side="right")]
    which = np.repeat(np.arange(len(pos)), count)
    nth = np.arange(int(ends[-1])) - starts[which]       # 0 .. count-1 within its record
    runs_at = (pos + starts)[which] + nth
    made = [t0[which] + step[which] * (nth + 1), cpu[which], kind[which], task[which],
            code[which]]
    for g, (mine, codes) in groups.items():
        _group_events(made, which, nth, g, mine, codes, count, t0, step)
    total = len(ts) + int(ends[-1])
    out = []
    for rows_col, run_col in zip((ts, cpus, kinds, tasks, np.arange(len(ts))), made):
        col = np.empty(total, np.int64)
        col[rows_at] = rows_col
        col[runs_at] = run_col
        out.append(col)
    table = Table(entries, np.concatenate(entry_kinds), packed)
    return (*out[:4], Coded(out[4], table))


def _batches(cols: list[np.ndarray], masks: Sequence[int]) -> list[np.ndarray]:
    """The columns with each MASK record replaced by a record of each pte_set it
    stands for, in place (what the loop over its batches would have recorded)."""
    mask = cols[KIND] == MASK
    at = np.flatnonzero(mask)
    t0, batch, count, ns = (cols[i][at].astype(np.int64) for i in (T0, STEP, COUNT, C))
    nbytes = (count + 7) // 8
    data = b"".join(masks[i].to_bytes(n, "little")
                    for i, n in zip(cols[D][at].tolist(), nbytes.tolist()))
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little").astype(np.int64)
    first_bit = 8 * (np.cumsum(nbytes) - nbytes)
    batches = -(-count // batch)
    rec = np.repeat(np.arange(len(at)), batches)              # each batch's record
    off = (np.arange(len(rec)) - (np.cumsum(batches) - batches)[rec]) * batch[rec]
    # A batch's bits end where the next one's begin (a record's last one: at the next
    # record's first bit, the bytes' padding, all zero).
    added = np.add.reduceat(bits, first_bit[rec] + off) if len(rec) else rec
    keep = added > 0
    rec, off, added = rec[keep], off[keep], added[keep]
    done = off + batch[rec] <= count[rec]
    ts = np.where(done, t0[rec] + ns[rec] * (off + batch[rec]), t0[rec] + ns[rec] * count[rec])
    per = np.ones(len(mask), np.int64)
    per[at] = np.bincount(rec, minlength=len(at))
    src = np.repeat(np.arange(len(mask)), per)
    out = [c[src] for c in cols]
    made = mask[src]
    for i, values in ((T0, ts), (STEP, 0), (COUNT, 1), (KIND, v.PTE_SET), (C, added), (D, 0)):
        out[i][made] = values
    return out


def _entries(cols: list[np.ndarray], kind: np.ndarray, count: np.ndarray,
             fields: list[tuple], kinds: np.ndarray, strings: np.ndarray,
             objects: np.ndarray) -> tuple:
    """The table of the rows and records: each record's code (a group's: its records
    and a row of codes for each of its events, first, second, last), the entries (the
    rows' tuples, then an empty tuple for each event of a kind without fields), their
    kinds and each other kind's columns, packed in the order of their codes."""
    code = np.zeros(len(kind), np.int64)
    # Each kind's records in order: a stable sort of their kinds (every kind recorded is
    # below 256: by radix).
    order = np.argsort(kind.astype(np.uint8), kind="stable")
    counts = np.bincount(kind, minlength=256)
    ends = np.cumsum(counts).tolist()
    # kind → its pieces: the records whose fields they are, how, and where their codes go
    pieces: dict[int, list[tuple]] = {}
    groups = {}
    for k in np.flatnonzero(counts).tolist():
        mine = order[ends[k] - counts[k]:ends[k]]
        if k not in GROUPS:
            pieces.setdefault(k, []).append((mine, FIELDS[k], code, mine))
            continue
        codes = np.zeros((3, len(mine)), np.int64)
        groups[k] = (mine, codes)
        three = np.flatnonzero(count[mine] == 3)
        for slot, (event, spec) in enumerate(GROUPS[k]):
            at = three if slot == 1 else slice(None)
            pieces.setdefault(event, []).append((mine[at], spec, codes[slot], at))
    entries, entry_kinds, packed = fields, [kinds], {}
    at = len(entries)
    for k, parts in pieces.items():
        for mine, spec, into, where in parts if not parts[0][1] else ():
            into[where] = at + np.arange(len(mine))
            at += len(mine)
            entries += [()] * len(mine)
            entry_kinds.append(np.full(len(mine), k, np.int64))
    for k, parts in pieces.items():
        for mine, spec, into, where in parts if parts[0][1] else ():
            into[where] = at + np.arange(len(mine))
            at += len(mine)
            made = [_column(f, cols, mine, strings, objects) for f in spec]
            packed[k] = made if k not in packed else [
                Same(None, len(a) + len(b)) if type(a) is Same else np.concatenate([a, b])
                for a, b in zip(packed[k], made)]
    return code, groups, entries, entry_kinds, packed


def _group_events(made: list[np.ndarray], which: np.ndarray, nth: np.ndarray, g: int,
                  mine: np.ndarray, codes: np.ndarray, count: np.ndarray, t0: np.ndarray,
                  step: np.ndarray) -> None:
    """Group ``g``'s events in ``made`` (ts, cpu, kind, task, code columns): its records
    ``mine``, ``codes`` each one's first, second and last event's."""
    rank = np.zeros(len(count), np.int64)
    rank[mine] = np.arange(len(mine))
    at = np.flatnonzero(made[2] == g)
    rec, n = which[at], nth[at]
    slot = np.where(n == 0, 0, np.where((n == 1) & (count[rec] == 3), 1, 2))
    first, second, last = (kind for kind, _ in GROUPS[g])
    made[0][at] = np.choose(slot, (t0[rec], t0[rec] + GROUP_NS[g], step[rec]))
    made[2][at] = np.choose(slot, (first, second, last))
    made[4][at] = codes[slot, rank[rec]]


def concat(parts: list[Part]) -> Part:
    """One part of several, in order."""
    if len(parts) == 1:
        return parts[0]
    ts, cpus, kinds, tasks, fields = transpose(parts)
    return (np.concatenate(ts), np.concatenate(cpus), np.concatenate(kinds),
            np.concatenate(tasks), Coded.concat(fields))
