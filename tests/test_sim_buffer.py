"""The simulator's event buffer: records kept as ten ints (pte_set runs, single events of
the common kinds, groups, faults into a used table, events of any kind with their fields
tuple kept aside) become the events they stand for, their fields coded (fieldcodes.Coded)
as the tuples they stand for."""

import numpy as np
from hypothesis import given, settings, strategies as st

from ptviz.sim import buffer
from replayer import vocab as v
from replayer.traceio.fieldcodes import Coded
from tests.conftest import LONG

ROW = st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 40), st.integers(0, 9),
                st.tuples(st.integers(0, 3)))
MMS = st.sampled_from([0xFFFF888004000000, 0xFFFF888004002000, 5])
# t0, step, count, cpu, task, mm (above 2**63 as the simulator's), pfn, entries
RUN = st.tuples(st.integers(0, 10**12), st.integers(0, 10**6), st.integers(1, 9),
                st.integers(0, 7), st.integers(0, 9), MMS,
                st.integers(0, 1 << 40), st.integers(0, 512))
STRINGS = ["tlb_shootdown", "local mm shootdown", "rcu", "batch", (), (0, 2), (1,), (1, 2, 3)]
OBJECTS = [(), (0x100,), (0x100, 0x101, 0x102)]
# One event of a recorded kind: ts, cpu, task, kind and its a .. d, and its fields tuple
# as an emit would give it.
ONE = st.one_of(
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9), MMS,
              st.integers(0, 3)).map(
        lambda x: (x[:3], v.TLB_FLUSH, (x[3], x[4], 0, 0), (x[3], 0, 0, 0, STRINGS[x[4]]))),
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9), MMS,
              st.integers(1, 4), st.integers(0, 1 << 40), st.integers(0, 1 << 47)).map(
        lambda x: (x[:3], v.TABLE_ALLOC, x[3:], (*x[3:], None))),
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9),
              st.integers(0, 3)).map(
        lambda x: (x[:3], v.IPI_ENTER, (x[3], 0, 0, 0), (STRINGS[x[3]],))),
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9),
              st.integers(0, 1 << 40), st.integers(0, 3)).map(
        lambda x: (x[:3], v.TABLE_FREE, (x[3], x[4], 0, 0), (x[3], STRINGS[x[4]], None))),
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9),
              st.integers(4, 7), st.integers(0, 3), st.integers(0, 3)).map(
        lambda x: (x[:3], v.IPI_SEND, (x[3], x[4], x[5], 0),
                   (STRINGS[x[3]], STRINGS[x[4]], STRINGS[x[5]]))),
    st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 9),
              st.integers(1, 10**6), st.integers(0, 3), st.integers(0, 2)).map(
        lambda x: (x[:3], v.RCU_QUEUE, (x[3], x[4], x[5], 0),
                   (x[3], STRINGS[x[4]], OBJECTS[x[5]]))))
# enter, length, target, reason (a code), the mm its handler flushes or None, its reason
IPI = st.tuples(st.integers(0, 10**12), st.integers(300, 10**5), st.integers(0, 7),
                st.integers(0, 3), st.one_of(st.none(), MMS), st.integers(0, 3))
# begin, length, cpu, task, mm, walker and protect (string codes), the pfn read or None
WALK = st.tuples(st.integers(0, 10**12), st.integers(200, 10**5), st.integers(0, 7),
                 st.integers(0, 9), MMS, st.integers(0, 3), st.integers(0, 3),
                 st.one_of(st.none(), st.integers(0, 1 << 40)))


# Faults into a table that had entries: t0, batch, fault ns, count, cpu, task, mm, pfn
# and the new entries' bits (at least one, below count).
MASKED = st.tuples(st.integers(0, 10**12), st.sampled_from([1, 3, 16, 64, 600]),
                   st.integers(0, 900), st.integers(1, 700), st.integers(0, 7),
                   st.integers(0, 9), MMS, st.integers(0, 1 << 40), st.integers(1, 1 << 700)
                   ).map(lambda x: (*x[:-1], x[-1] % (1 << x[3]) or 1))


def _batches(t0, batch, ns, count, new):
    """(ts, entries added) of each batch that adds one: the loop buffer.MASK stands for."""
    out = []
    for off in range(0, count, batch):
        added = ((new >> off) & ((1 << batch) - 1)).bit_count()
        if added:
            out.append((t0 + ns * (off + batch) if off + batch <= count else t0 + ns * count,
                        added))
    return out


def _expanded(steps):
    """The records of ``steps`` (their masks and objects) and the events they stand for."""
    recs, masks, objects, expanded = [], [], list(OBJECTS), []
    for what, item in steps:
        if what == "row":
            ts, cpu, kind, task, fields = item
            recs += (ts, 0, 1, cpu, task, buffer.ROW, kind, 0, 0, len(objects))
            objects.append(fields)
            expanded.append(item)
        elif what == "run":
            t0, step, count, cpu, task, mm, pfn, n = item
            recs += (t0, step, count, cpu, task, v.PTE_SET, mm, pfn, n, 0)
            expanded += [(t0 + step * j, cpu, v.PTE_SET, task, (mm, pfn, n, None))
                         for j in range(1, count + 1)]
        elif what == "one":
            (ts, cpu, task), kind, args, fields = item
            recs += (ts, 0, 1, cpu, task, kind, *args, *[0] * (4 - len(args)))
            expanded.append((ts, cpu, kind, task, fields))
        elif what == "masked":
            t0, batch, ns, count, cpu, task, mm, pfn, new = item
            recs += (t0, batch, count, cpu, task, buffer.MASK, mm, pfn, ns, len(masks))
            masks.append(new)
            expanded += [(ts, cpu, v.PTE_SET, task, (mm, pfn, n, None))
                         for ts, n in _batches(t0, batch, ns, count, new)]
        elif what == "ipi":
            at, length, cpu, reason, mm, why = item
            done = at + length
            recs += (at, done, 2 if mm is None else 3, cpu, 0, buffer.IPI, reason,
                     0 if mm is None else mm, why, 0)
            expanded.append((at, cpu, v.IPI_ENTER, 0, (STRINGS[reason],)))
            if mm is not None:
                expanded.append((at + 200, cpu, v.TLB_FLUSH, 0, (mm, 0, 0, 0, STRINGS[why])))
            expanded.append((done, cpu, v.IPI_EXIT, 0, (STRINGS[reason],)))
        else:
            begin, length, cpu, task, mm, walker, protect, pfn = item
            end = begin + length
            recs += (begin, end, 2 if pfn is None else 3, cpu, task, buffer.WALK,
                     mm, walker, protect, 0 if pfn is None else pfn)
            expanded.append((begin, cpu, v.WALK_BEGIN, task,
                             (mm, STRINGS[walker], STRINGS[protect])))
            if pfn is not None:
                expanded.append((begin + 100, cpu, v.WALK_TABLE, task, (pfn,)))
            expanded.append((end, cpu, v.WALK_END, task, ()))
    return recs, masks, objects, expanded


STEPS = st.lists(st.one_of(st.tuples(st.just("row"), ROW), st.tuples(st.just("run"), RUN),
                           st.tuples(st.just("one"), ONE), st.tuples(st.just("walk"), WALK),
                           st.tuples(st.just("masked"), MASKED), st.tuples(st.just("ipi"), IPI)),
                 max_size=30)


def _close(steps):
    recs, masks, objects, expanded = _expanded(steps)
    return buffer.close(recs, STRINGS, masks, objects), expanded


@settings(max_examples=300 if LONG else 25)
@given(steps=STEPS)
def test_a_part_holds_the_records_events_in_emission_order(steps):
    (ts, cpus, kinds, tasks, fields), expanded = _close(steps)
    assert all(c.dtype == np.int64 for c in (ts, cpus, kinds, tasks))
    assert type(fields) is Coded
    got = list(zip(ts.tolist(), cpus.tolist(), kinds.tolist(), tasks.tolist(), fields))
    assert got == expanded
    assert fields.lengths().tolist() == [len(e[4]) for e in expanded]
    part, expanded2 = _close(steps[:2])
    both = buffer.concat([_close(steps)[0], part])
    assert list(zip(both[0].tolist(), both[4])) == [(e[0], e[4]) for e in expanded + expanded2]


@settings(max_examples=300 if LONG else 25)
@given(a=STEPS, b=STEPS, data=st.data())
def test_coded_fields_slice_take_compact_and_concat_as_lists_do(a, b, data):
    """What the machine does to a part's fields (a time sort, a cut, the rest kept in a
    table of its own, joined to the next part) gives the tuples a list would."""
    parts = [_close(s)[0] for s in (a, b)]
    lists = [p[4].tolist() for p in parts]
    n = len(lists[0])
    order = data.draw(st.permutations(range(n)))
    cut = data.draw(st.integers(0, n))
    taken = parts[0][4].take(np.array(order, np.int64))
    kept = taken[cut:].compact()
    assert taken[:cut].tolist() == [lists[0][i] for i in order[:cut]]
    assert kept.tolist() == [lists[0][i] for i in order[cut:]]
    joined = Coded.concat([kept, parts[1][4]])
    assert joined.tolist() == [lists[0][i] for i in order[cut:]] + lists[1]
    assert joined.lengths().tolist() == [len(f) for f in joined.tolist()]


@settings(max_examples=300 if LONG else 40)
@given(items=st.lists(MASKED, min_size=1, max_size=4), rows=st.lists(ROW, max_size=3))
def test_faults_into_a_used_table_are_a_pte_set_per_batch_that_adds_an_entry(items, rows):
    """A MASK record stands for the loop over its batches (the last one partial, or
    longer than the faults), between the events emitted around it."""
    steps = [("row", r) for r in rows[:1]] + [("masked", m) for m in items] + \
        [("row", r) for r in rows[1:]]
    (ts, cpus, kinds, tasks, fields), expanded = _close(steps)
    assert list(zip(ts.tolist(), cpus.tolist(), kinds.tolist(), tasks.tolist(),
                    fields)) == expanded
