"""The machine's events not yet written, turned into columns (machine.py).

Events come as records of ten ints in a flat list (:data:`RECORD`), in emission order.
A record is a run of ``count`` identical events at a fixed ``step`` after ``t0``
(pte_set: 83% of a fault-heavy workload's events; any other event is a run of one), a
group of two or three events (:data:`GROUPS`: a walker's session, an IPI's handling),
the faults into a used table (:data:`MASK`), or an event whose fields tuple is kept
aside (:data:`ROW`: the rare kinds). The common kinds' fields are ints, codes of strings
and nils (:data:`FIELDS`). Records are spread into columns with numpy and their fields
go to the writer as columns (fieldcodes.Table's packed kind): an event then costs a few
ns instead of two tuples, two transposes and value by value conversions (~400 ns), and
no tuple is kept alive for it.
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
RECORD = ("t0", "step", "count", "cpu", "task", "kind", "a", "b", "c", "d")
WIDTH = len(RECORD)
T0, STEP, COUNT, CPU, TASK, KIND, A, B, C, D = range(WIDTH)
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
#: An event of kind ``a`` whose fields tuple is the ``d``-th of the objects given to close.
ROW = 253

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


def close(recs: list[int], strings: Sequence = (), masks: Sequence[int] = (),
          objects: Sequence = ()) -> Part:
    """The events of the records (``recs``, flat; their strings coded in ``strings``,
    MASK records' bits in ``masks``, other fields in ``objects``) as one part, in
    emission order; their fields coded into the records' columns and tuples."""
    if not recs:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, Coded(empty, Table([], empty))
    # Every value is an int in 0 .. 2**64-1 (an mm is above 2**63): one conversion.
    flat = np.frombuffer(array("Q", recs), np.uint64).reshape(-1, WIDTH)
    cols = [flat[:, i] for i in range(WIDTH)]
    if masks:
        cols = _batches(cols, masks)
    t0, step, count, cpu, task, kind = (cols[i].astype(np.int64)
                                        for i in (T0, STEP, COUNT, CPU, TASK, KIND))
    # fromiter: a list of tuples would be a 2-d array.
    strings, objects = (np.fromiter(x, object, len(x)) for x in (strings, objects))
    code, groups, table = _entries(cols, kind, count, strings, objects)
    ends = np.cumsum(count)
    which = np.repeat(np.arange(len(kind)), count)
    nth = np.arange(int(ends[-1])) - (ends - count)[which]     # 0 .. count-1 in its record
    made = [t0[which] + step[which] * (nth + 1), cpu[which], kind[which], task[which],
            code[which]]
    for g, (mine, codes) in groups.items():
        if g != ROW:
            _group_events(made, which, nth, g, mine, codes, count, t0, step)
    rows = groups.get(ROW)
    if rows is not None:
        made[2][np.flatnonzero(made[2] == ROW)] = cols[A][rows[0]].astype(np.int64)
    return (*made[:4], Coded(made[4], table))


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
             strings: np.ndarray, objects: np.ndarray) -> tuple:
    """The table of the records and each record's code (a group's: its records and a
    row of codes for each of its events, first, second, last). The table's entries are
    the ROW records' tuples, then an empty tuple for each event of a kind without
    fields; each other kind's entries are packed, its columns in the order of codes."""
    code = np.zeros(len(kind), np.int64)
    # Each kind's records in order: a stable sort of their kinds (every kind recorded is
    # below 256: by radix).
    order = np.argsort(kind.astype(np.uint8), kind="stable")
    counts = np.bincount(kind, minlength=256)
    ends = np.cumsum(counts).tolist()
    # kind → its pieces: the records whose fields they are, how, and where their codes go
    pieces: dict[int, list[tuple]] = {}
    groups = {}
    entries, entry_kinds = [], []
    for k in np.flatnonzero(counts).tolist():
        mine = order[ends[k] - counts[k]:ends[k]]
        if k == ROW:
            code[mine] = np.arange(len(mine))
            entries = objects[cols[D][mine].astype(np.intp)].tolist()
            entry_kinds.append(cols[A][mine].astype(np.int64))
            groups[k] = (mine, None)
        elif k not in GROUPS:
            pieces.setdefault(k, []).append((mine, FIELDS[k], code, mine))
        else:
            codes = np.zeros((3, len(mine)), np.int64)
            groups[k] = (mine, codes)
            three = np.flatnonzero(count[mine] == 3)
            for slot, (event, spec) in enumerate(GROUPS[k]):
                at = three if slot == 1 else slice(None)
                pieces.setdefault(event, []).append((mine[at], spec, codes[slot], at))
    packed = {}
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
    kinds = np.concatenate(entry_kinds) if entry_kinds else np.zeros(0, np.int64)
    return code, groups, Table(entries, kinds, packed)


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
    made[0][at] = np.where(slot == 2, step[rec], t0[rec] + GROUP_NS[g] * (slot == 1))
    made[2][at] = np.array([first, second, last])[slot]
    made[4][at] = codes[slot, rank[rec]]


def concat(parts: list[Part]) -> Part:
    """One part of several, in order."""
    if len(parts) == 1:
        return parts[0]
    ts, cpus, kinds, tasks, fields = transpose(parts)
    return (np.concatenate(ts), np.concatenate(cpus), np.concatenate(kinds),
            np.concatenate(tasks), Coded.concat(fields))
