"""Lines of ftrace text → records: tracefs ``trace``/``trace_pipe`` and ``trace-cmd report``.

Layouts (shared/reference/ftrace-format-variants.md): 4 or 5 flag characters
or none, an optional TGID column (``(  1234)`` or ``(-----)``), an optional
instance-name prefix (trace-cmd report of ``extract -B``), task names with
spaces, CRLF endings, ``# …`` headers, ``cpus=N`` preambles, in-band loss
markers (``CPU:2 [LOST 11745 EVENTS]``, ``CPU:2 [123 EVENTS DROPPED]``) and
stack-trace continuation lines (`` => func``). A line that fits none is
counted with its number, never fatal. Streaming: one line at a time.

Hostile input (SPEC §11): lines are read at most :data:`LINE_LIMIT` characters
at a time (:func:`bounded_lines`); every pattern runs in time linear in the
line (possessive quantifiers wherever two quantifiers could share characters,
so no input makes the engine try a split twice); every number is range-checked
where it enters (:func:`checked`), so nothing past 64 bits reaches an event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable, Iterator

# The kernel formats a line in a trace_seq of a page or two; a megabyte is no ftrace line.
LINE_LIMIT = 1 << 20
# What bounded_lines yields for an over-long line: a "\n" inside a line is impossible
# from readline, and the "\0" before it fails every layout at its first character.
_TOO_LONG = "\0\n"

# Where each number must end, as the trace's field types say (replayer/vocab.py).
U64_END = 1 << 64          # unsigned fields: addresses, pointers, callbacks
I64_END = 1 << 63          # signed fields (-I64_END ≤ x < I64_END); pfns
CPU_END = 1 << 16          # the replayer keeps CPUs as uint16
PID_END = 1 << 32
COUNT_END = 1 << 32
# Timestamps in ns are int64, less the 1 ns after its record where the inference may
# place an event (a fault's first PTE, a detach just after its zap).
TS_END = I64_END - 1

# comm-pid [ (tgid) ] [cpu] [flags] seconds.micros: name: payload. The comm is the one
# lazy part; each "-" it stops at is tried against runs that cannot overlap the next
# candidate's, and the payload takes everything (also a stray "\n"), so a try never fails
# late: linear. The comm goes from "-" to "-" (a possessive run between them), not a
# character at a time as ``.*?`` would: the same candidates in the same order, found
# faster (an instance prefix makes comms long).
_EVENT = re.compile(
    r"\s*+(?P<comm>[^-\n]*+(?:-[^-\n]*+)*?)-(?P<pid>\d++)\s++"
    r"(?:\(\s*+(?P<tgid>\d++|-++)\)\s++)?"
    r"\[(?P<cpu>\d++)\]\s++"
    r"(?:(?P<flags>[.a-zA-Z0-9]{4,5}+)\s++)?"
    r"(?P<secs>\d++)\.(?P<frac>\d++):\s++"
    r"(?P<name>[\w.-]++)(?P<sep>:\s?|\(| -> | <-)(?P<payload>(?s:.*))")
# Latency format (E): CPU glued to the flags, relative "NNNus" or absolute seconds,
# an optional delay mark before the colon; also ``trace-cmd report -l``.
_LATENCY = re.compile(
    r"\s*+(?P<comm>.*?)-(?P<pid>\d++)\s++(?P<cpu>\d+)(?P<flags>[.a-zA-Z0-9]{4,8})\s++"
    r"(?:(?P<secs>\d++)\.(?P<frac>\d++)|(?P<us>\d++)us)\s*+(?:[!+#*@$]\s*+)?:\s++"
    r"(?P<name>[\w.-]++):\s?(?P<payload>(?s:.*))")
# No task column (F): " [000] 154.892148: ipi_raise: ..."
_NOTASK = re.compile(
    r"\s*+\[(?P<cpu>\d++)\]\s++(?:(?P<flags>[.a-zA-Z0-9]{4,5}+)\s++)?"
    r"(?P<secs>\d++)\.(?P<frac>\d++):\s++(?P<name>[\w.-]++):\s?(?P<payload>(?s:.*))")
# function_graph (H): " 3)   0.081 us    |  func();", " 3) + 10.182 us   |  }" — no
# timestamp of its own. The blanks after ")" and "us" are taken whole: the marks' class
# holds a space too, and letting both share them was quadratic.
_GRAPH = re.compile(r"\s*+(?P<cpu>\d++)\)\s++(?:[+!#*@$] )?(?:(?P<dur>[\d.]++)\s++us\s++)?"
                    r"[+!#*@$ ]*+\|\s*+(?P<call>(?s:.*))")
# trace-cmd report of an instance: "NAME:           comm-pid [...]" (name, then padding)
_INSTANCE = re.compile(r"([\w.-]++):\s{2,}+(\S.*)")
_LOST = re.compile(r"CPU:\s*+(\d++)\s++\[(?:LOST\s++(\d++)\s++EVENTS|(\d++)\s++EVENTS\s++"
                   r"DROPPED)\]")
_CONTINUATION = re.compile(r"\s*+=>\s")


@dataclass(slots=True)
class Record:
    """One event line. ``ts`` in ns; ``tgid`` None when not recorded."""

    lineno: int
    ts: int
    cpu: int
    pid: int | None
    tgid: int | None
    comm: str
    flags: str
    name: str
    payload: str


@dataclass(slots=True)
class Loss:
    """A loss marker; ``count`` None when it does not fit a count (0..2**32-1)."""

    lineno: int
    cpu: int
    count: int | None


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    headers: int = 0
    continuations: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)   # first few: (line, text)
    bad_count: int = 0
    tgid_seen: bool = False        # a TGID column was recorded (options/record-tgid)

    def note_bad(self, lineno: int, text: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 20:
            self.bad.append((lineno, text[:120]))


def bounded_lines(f: IO[str], limit: int = LINE_LIMIT) -> Iterator[str]:
    """The lines of ``f``, none held longer than ``limit`` characters: a longer line
    is one item that every layout refuses (its first 120 characters, for the bad-line
    preview), and the rest of it is read ``limit`` at a time and dropped."""
    readline = f.readline
    while True:
        line = readline(limit)
        if len(line) < limit:
            if not line:
                return
            yield line
        elif line[-1] in "\r\n":
            yield line
        else:
            yield _TOO_LONG + line[:120]
            rest = line
            while len(rest) == limit and rest[-1] not in "\r\n":
                rest = readline(limit)


def parse_lines(lines: Iterable[str], stats: ParseStats | None = None,
                make: Callable[..., Any] = Record) -> Iterator[Record | Loss]:
    """Records and loss markers from ftrace text lines, in input order. ``make``
    makes the common layout's records from Record's fields (the parsing child makes
    plain tuples, which it sends on as they are)."""
    stats = stats if stats is not None else ParseStats()
    match = _EVENT.match
    last_ts = 0
    lineno = events = 0
    tgid_seen = False
    task_names: dict[str, str] = {}      # as matched → without an instance prefix
    try:
        for lineno, raw in enumerate(lines, 1):
            m = match(raw)   # the common case first ("\r\n" is stripped with the
            #                 payload); the other layouts only if not
            if m is None:
                rec = _not_an_event_line(raw, lineno, last_ts, stats)
                if rec is not None:
                    if isinstance(rec, Record):
                        events += 1
                        last_ts = rec.ts
                    yield rec
                continue
            # One C call for every group (this loop runs once per line of a capture).
            comm, pid, tgid, cpu, flags, secs, frac, name, sep, payload = m.groups()
            try:     # past 4300 digits int() raises ValueError: out of range, like these
                ts = (int(secs + frac) * 1000 if len(frac) == 6 else
                      int(secs) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]))
                cpu, pid = int(cpu), int(pid)
                if tgid is not None:
                    tgid_seen = True
                    tgid = int(tgid) if tgid[0] != "-" else None
                if ts >= TS_END or cpu >= CPU_END or pid >= PID_END or \
                        tgid is not None and tgid >= PID_END:
                    raise ValueError
            except ValueError:
                stats.note_bad(lineno, raw.rstrip("\r\n"))
                continue
            if sep != ": ":
                if sep == "(":                   # syscall tracer: sys_madvise(start: …)
                    payload = "(" + payload
                elif sep == " <-":               # function tracer: func <-parent
                    name, payload = "function", f"{name} <-{payload}"
                elif sep == " -> ":              # syscall exit: sys_madvise -> 0x0
                    payload = "-> " + payload
            if name == "print" and payload.lstrip().startswith("tracing_mark_write:"):
                name, payload = "tracing_mark_write", payload.lstrip()[19:]
            if ":  " in comm:
                name_only = task_names.get(comm)
                if name_only is None:
                    inst = _INSTANCE.match(comm)
                    name_only = task_names[comm] = inst.group(2) if inst else comm
                comm = name_only
            events += 1
            last_ts = ts
            yield make(lineno, ts, cpu, pid, tgid, comm, flags or "", name, payload.strip())
    finally:
        stats.lines += lineno
        stats.tgid_seen = stats.tgid_seen or tgid_seen
        stats.events += events


def _not_an_event_line(raw: str, lineno: int, last_ts: int, stats: ParseStats
                       ) -> Record | Loss | None:
    """A line the common layout does not match: another layout's event, a loss marker,
    or None for a header, a continuation or a bad line (counted in ``stats``)."""
    if raw.startswith(_TOO_LONG):
        stats.note_bad(lineno, raw[len(_TOO_LONG):])
        return None
    line = raw.rstrip("\r\n")
    if _is_header(line):
        stats.headers += 1
        return None
    try:
        other = _other_layouts(line, lineno, last_ts)
        if other is not None:
            return other
        lost = _LOST.search(line)
        if lost is not None:
            cpu = int(lost.group(1))
            if cpu >= CPU_END:
                raise ValueError
            return Loss(lineno, cpu, checked(lost.group(2) or lost.group(3), 10, 0, COUNT_END))
    except ValueError:                  # a layout, but with a number out of range
        stats.note_bad(lineno, line)
        return None
    if _CONTINUATION.match(line) or line.startswith((" ", "\t")) and "[" not in line:
        stats.continuations += 1
    else:
        stats.note_bad(lineno, line)
    return None


_HEADER = re.compile(r"^\s*+(?:#|-----|cpus=|version =|CPU \d++ is empty|$)|#####")


def _is_header(line: str) -> bool:
    return _HEADER.search(line) is not None


def _record(lineno: int, secs: str | None, frac: str | None, us: str | None, cpu: str,
            pid: str | None, comm: str, flags: str, name: str, payload: str) -> Record:
    """A record of the rarer layouts; ValueError when a number is out of range."""
    ts = (int(us) * 1000 if us is not None else
          int(secs or "") * 1_000_000_000 + int((frac or "").ljust(9, "0")[:9]))
    cpu_, pid_ = int(cpu), int(pid) if pid is not None else None
    if ts >= TS_END or cpu_ >= CPU_END or pid_ is not None and pid_ >= PID_END:
        raise ValueError
    return Record(lineno, ts, cpu_, pid_, None, comm, flags, name, payload)


def _other_layouts(line: str, lineno: int, last_ts: int) -> Record | None:
    """The latency, no-task and function_graph layouts, or None; ValueError when one
    matches with a number out of range."""
    m = _LATENCY.match(line)
    if m is not None:
        return _record(lineno, m.group("secs"), m.group("frac"), m.group("us"),
                       m.group("cpu"), m.group("pid"), m.group("comm").strip(),
                       m.group("flags"), m.group("name"), m.group("payload").strip())
    m = _NOTASK.match(line)
    if m is not None:
        return _record(lineno, m.group("secs"), m.group("frac"), None, m.group("cpu"), None,
                       "", m.group("flags") or "", m.group("name"), m.group("payload").strip())
    m = _GRAPH.match(line)
    if m is not None and "=>" not in m.group("call"):
        payload = m.group("call").strip()
        if m.group("dur"):
            payload += f" /* {m.group('dur')} us */"
        cpu = int(m.group("cpu"))
        if cpu >= CPU_END:
            raise ValueError
        return Record(lineno, last_ts, cpu, None, None, "", "", "funcgraph", payload)
    return None


# A key starts where no key character precedes it: findall would otherwise retry every
# position inside a long run that is not followed by "=" (quadratic).
_KV = re.compile(r"(?<![\w.])([\w.]++)[=:]\s?([^\s,]++)")


def fields(payload: str) -> dict[str, str]:
    """``key=value`` / ``key: value,`` pairs of a payload (values as text, no commas)."""
    return dict(_KV.findall(payload))


def field(payload: str, key: str) -> str | None:
    """The value of one field, ``key`` given with its ``=`` (``"pfn="``), up to the next
    space: for the events of every other line, where :func:`fields` costs 5× more."""
    span = _value_span(payload, key)
    return None if span is None else payload[span[0]:span[1]]


def _value_span(payload: str, key: str) -> tuple[int, int] | None:
    """Where the value of ``key`` (a word of its own, with its ``=``) starts and ends."""
    at = payload.find(key)
    while at > 0 and payload[at - 1] != " ":
        at = payload.find(key, at + 1)
    if at < 0:
        return None
    start = at + len(key)
    end = payload.find(" ", start)
    return start, len(payload) if end < 0 else end


def checked(text: str | None, base: int = 10, lo: int = 0, hi: int = U64_END) -> int | None:
    """``int(text, base)`` if it parses and ``lo <= value < hi``, else None (never raises):
    where a number from a line enters an event field. No number in range is printed with
    more than 64 characters, and int() is slow on long decimal strings."""
    if text is None or len(text) > 64:
        return None
    try:
        value = int(text, base)
    except ValueError:
        return None
    return value if lo <= value < hi else None


_NUMBER = re.compile(r"0x([0-9a-fA-F]++)|(\d++)")
_HEX = re.compile(r"(?:0x)?([0-9a-fA-F]++)")
_HEX_DIGITS = "0123456789abcdefABCDEF"


def number(text: str | None, hex_digits: bool = False, hi: int = U64_END) -> int | None:
    """A number as ftrace prints it, if ``0 <= value < hi``; ``hex_digits``: bare digits
    are hex (the syscall tracer prints ``%lx`` without 0x before 6.19, and values < 10
    alike after, docs/kernel-facts.md §5.1)."""
    if text is None:
        return None
    if text[:2] == "0x" and not hex_digits:
        value = _hex_after_0x(text[2:], hi)
        if value is not _NOT_PLAIN_HEX:
            return value
    if hex_digits:
        m = _HEX.match(text)
        return checked(m.group(1), 16, 0, hi) if m else None
    m = _NUMBER.match(text)
    if m is None:
        return None
    return checked(m.group(1), 16, 0, hi) if m.group(1) else checked(m.group(2), 10, 0, hi)


def number_field(payload: str, key: str, hi: int = U64_END) -> int | None:
    """``number(field(payload, key), hi=hi)`` in one call: the pfn of every
    mm_page_alloc and mm_page_free line, the address of every fault (most of a
    capture's lines), where the second call and slice are a tenth of the import."""
    span = _value_span(payload, key)
    if span is None:
        return None
    start, end = span
    if payload.startswith("0x", start):
        value = _hex_after_0x(payload[start + 2:end], hi)
        if value is not _NOT_PLAIN_HEX:
            return value
    return number(payload[start:end], hi=hi)


_NOT_PLAIN_HEX = object()


def _hex_after_0x(digits: str, hi: int):
    """The common case (pfns, addresses: every other line), without the regex: the
    value ``_NUMBER`` and :func:`checked` give ``0x`` + ``digits`` when all are hex
    digits (None when not below ``hi``); ``_NOT_PLAIN_HEX`` when they are not."""
    if digits and len(digits) <= 64 and not digits.strip(_HEX_DIGITS):
        value = int(digits, 16)
        return value if value < hi else None
    return _NOT_PLAIN_HEX
