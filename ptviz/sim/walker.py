"""Lockless page-table walkers on the machine's other CPUs (machine.py): sessions
generated lazily, up to the moment the workload is about to act, so that a walker sees
the page tables as they are when it starts."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

from . import buffer

if TYPE_CHECKING:
    from .machine import Machine


def _below(getrandbits: Callable[[int], int]) -> Callable[[int], int]:
    def below(n: int) -> int:
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r
    return below


def fast_randrange(rng: random.Random) -> Callable[[int], int]:
    """``rng.randrange`` of one argument n >= 1 as CPython computes it (getrandbits of
    n's bit length until below n), without its argument checks: a walkers run draws
    three times a session. Where this Python does otherwise (checked once, at import),
    ``rng.randrange`` itself, so the draws are always randrange's."""
    return _below(rng.getrandbits) if _SAME_DRAWS else rng.randrange


def _same_draws() -> bool:
    a, b = random.Random(12345), random.Random(12345)
    below = _below(b.getrandbits)
    bounds = [1, 2, 3, 5, 7, 100, 1 << 20, 3 << 40, 12_000_000, 2_000_001] * 50
    return all(a.randrange(n) == below(n) for n in bounds) and a.random() == b.random()


_SAME_DRAWS = _same_draws()


class WalkerCpu:
    """Sessions of one lockless walker on one CPU: ``[begin, end)`` intervals."""

    def __init__(self, machine: "Machine", cpu: int, walker: str, mean_gap: int,
                 mean_hold: int, task: int) -> None:
        self.m, self.cpu, self.walker = machine, cpu, walker
        self.protect = "irq_off" if walker == "gup_fast" else "rcu"
        self.mean_gap, self.mean_hold = mean_gap, mean_hold
        self.task = task
        self.next_begin = machine.now + machine.rng.randrange(mean_gap + 1)
        self.below = machine.below
        self.current: tuple[int, int] | None = None     # the latest session
        self.pick: Callable[[], int | None] = lambda: None  # the table a walk reaches
        #: Or, for a reader of fresh data (system.Sim.add_walker), what its pick reads:
        #: (address space, lowest address, PMD span); advance then inlines pick.
        self.reads: tuple | None = None

    def advance(self, t: int) -> None:
        """Generate every session that begins at or before ``t``. The hottest loop of a
        walkers run: a session is one record in the machine's (nothing in the loop can
        flush them), its draws randrange's without the checks (:func:`fast_randrange`)."""
        begin = self.next_begin
        if begin > t:
            return
        if self.reads is not None and _SAME_DRAWS:
            self._advance_reading(t)
            return
        m, cpu, task, pick = self.m, self.cpu, self.task, self.pick
        below, hold, gap = self.below, 2 * self.mean_hold + 1, 2 * self.mean_gap + 1
        busy = m.busy_until.get(cpu, 0)      # only an IPI moves it, and none comes here
        # A session is one record (buffer.WALK); no row is emitted in the loop.
        recs = m._recs
        held = len(recs)
        mm, walker, protect = m.walk_mm, m.codes[self.walker], m.codes[self.protect]
        events = 0
        current = None
        while begin <= t:
            if busy > begin:
                begin = busy
                if begin > t:
                    break
            end = begin + 200 + below(hold)
            pfn = pick()
            if pfn is None:
                recs += (begin, end, 2, cpu, task, buffer.WALK, mm, walker, protect, 0)
                events += 2
            else:
                recs += (begin, end, 3, cpu, task, buffer.WALK, mm, walker, protect, pfn)
                events += 3
            current = (begin, end)
            begin = end + 1 + below(gap)
        self.next_begin = begin
        if current is not None:
            self.current = current
            m._in_runs += events - (len(recs) - held) // buffer.WIDTH
            m._room -= events
            if m._room <= 0:
                m._flush_due()

    def _advance_reading(self, t: int) -> None:
        """:meth:`advance` with :func:`fast_randrange`'s draws and the pick of
        system.Sim.add_walker (an address up to two PMD spans below the writer's cursor,
        not below ``start``) written out: the same draws in the same order, the same
        records, without three calls a session."""
        begin = self.next_begin
        m, cpu, task = self.m, self.cpu, self.task
        a, start, span = self.reads
        getrandbits = m.rng.getrandbits
        hold, gap, back = 2 * self.mean_hold + 1, 2 * self.mean_gap + 1, 2 * span
        k_hold, k_gap, k_back = hold.bit_length(), gap.bit_length(), back.bit_length()
        cursor, ptes = a.cursor, a.ptes      # nothing in the loop moves the writer
        busy = m.busy_until.get(cpu, 0)
        recs = m._recs
        held = len(recs)
        mm, walker, protect = m.walk_mm, m.codes[self.walker], m.codes[self.protect]
        events = 0
        end = -1
        while begin <= t:
            if busy > begin:
                begin = busy
                if begin > t:
                    break
            r = getrandbits(k_hold)
            while r >= hold:
                r = getrandbits(k_hold)
            end = begin + 200 + r
            r = getrandbits(k_back)
            while r >= back:
                r = getrandbits(k_back)
            r = cursor - r
            table = ptes.get((r if r > start else start) // span)
            if table is None:
                recs += (begin, end, 2, cpu, task, buffer.WALK, mm, walker, protect, 0)
                events += 2
            else:
                recs += (begin, end, 3, cpu, task, buffer.WALK, mm, walker, protect,
                         table.pfn)
                events += 3
            last = begin
            r = getrandbits(k_gap)
            while r >= gap:
                r = getrandbits(k_gap)
            begin = end + 1 + r
        self.next_begin = begin
        if end >= 0:
            self.current = (last, end)
            m._in_runs += events - (len(recs) - held) // buffer.WIDTH
            m._room -= events
            if m._room <= 0:
                m._flush_due()

    def section_at(self, t: int) -> tuple[int, int] | None:
        """The session containing ``t``, if any (sessions up to ``t`` are generated)."""
        self.advance(t)
        cur = self.current
        return cur if cur is not None and cur[0] <= t < cur[1] else None
