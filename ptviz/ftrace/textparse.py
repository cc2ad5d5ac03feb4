"""Lines of ftrace text → records: tracefs ``trace``/``trace_pipe`` and ``trace-cmd report``.

Layouts (shared/reference/ftrace-format-variants.md): 4 or 5 flag characters
or none, an optional TGID column (``(  1234)`` or ``(-----)``), an optional
instance-name prefix (trace-cmd report of ``extract -B``), task names with
spaces, CRLF endings, ``# …`` headers, ``cpus=N`` preambles, in-band loss
markers (``CPU:2 [LOST 11745 EVENTS]``, ``CPU:2 [123 EVENTS DROPPED]``) and
stack-trace continuation lines (`` => func``). A line that fits none is
counted with its number, never fatal. Streaming: one line at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

# comm-pid [ (tgid) ] [cpu] [flags] seconds.micros: name: payload
_EVENT = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>\d+|-+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[.a-zA-Z0-9]{4,5})\s+)?"
    r"(?P<secs>\d+)\.(?P<frac>\d+):\s+"
    r"(?P<name>[\w.-]+)(?P<sep>:\s?|\(| -> | <-)(?P<payload>.*)$")
# Latency format (E): CPU glued to the flags, relative "NNNus" or absolute seconds,
# an optional delay mark before the colon; also ``trace-cmd report -l``.
_LATENCY = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?P<cpu>\d+)(?P<flags>[.a-zA-Z0-9]{4,8})\s+"
    r"(?:(?P<secs>\d+)\.(?P<frac>\d+)|(?P<us>\d+)us)\s*[!+#*@$]?\s*:\s+"
    r"(?P<name>[\w.-]+):\s?(?P<payload>.*)$")
# No task column (F): " [000] 154.892148: ipi_raise: ..."
_NOTASK = re.compile(
    r"^\s*\[(?P<cpu>\d+)\]\s+(?:(?P<flags>[.a-zA-Z0-9]{4,5})\s+)?"
    r"(?P<secs>\d+)\.(?P<frac>\d+):\s+(?P<name>[\w.-]+):\s?(?P<payload>.*)$")
# function_graph (H): " 3)   0.081 us    |  func();" — no timestamp of its own.
_GRAPH = re.compile(r"^\s*(?P<cpu>\d+)\)\s+(?:(?P<dur>[\d.]+)\s+us\s+)?[+!#*@$ ]*\|\s*"
                    r"(?P<call>.*)$")
# trace-cmd report of an instance: "NAME:           comm-pid [...]" (name, then padding)
_INSTANCE = re.compile(r"^([\w.-]+):\s{2,}(\S.*)$")
_LOST = re.compile(r"CPU:\s*(\d+)\s+\[(?:LOST\s+(\d+)\s+EVENTS|(\d+)\s+EVENTS\s+DROPPED)\]")
_CONTINUATION = re.compile(r"^\s*=>\s")


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
    lineno: int
    cpu: int
    count: int


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    headers: int = 0
    continuations: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)   # first few: (line, text)
    bad_count: int = 0

    def note_bad(self, lineno: int, text: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 20:
            self.bad.append((lineno, text[:120]))


def parse_lines(lines: Iterable[str], stats: ParseStats | None = None
                ) -> Iterator[Record | Loss]:
    """Records and loss markers from ftrace text lines, in input order."""
    stats = stats if stats is not None else ParseStats()
    match = _EVENT.match
    last_ts = 0
    lineno = events = 0
    task_names: dict[str, str] = {}      # as matched → without an instance prefix
    try:
        for lineno, raw in enumerate(lines, 1):
            m = match(raw)   # the common case first ("." stops at the newline; "\r" is
            #                 stripped with the payload); the other layouts only if not
            if m is None:
                rec = _not_an_event_line(raw.rstrip("\r\n"), lineno, last_ts, stats)
                if rec is not None:
                    if isinstance(rec, Record):
                        events += 1
                        last_ts = rec.ts
                    yield rec
                continue
            # One C call for every group (this loop runs once per line of a capture).
            comm, pid, tgid, cpu, flags, secs, frac, name, sep, payload = m.groups()
            ts = (int(secs + frac) * 1000 if len(frac) == 6 else
                  int(secs) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]))
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
            yield Record(lineno, ts, int(cpu), int(pid),
                         int(tgid) if tgid and tgid[0] != "-" else None,
                         comm, flags or "", name, payload.strip())
    finally:
        stats.lines += lineno
        stats.events += events


def _not_an_event_line(line: str, lineno: int, last_ts: int, stats: ParseStats
                       ) -> Record | Loss | None:
    """A line the common layout does not match: another layout's event, a loss marker,
    or None for a header, a continuation or a bad line (counted in ``stats``)."""
    if _is_header(line):
        stats.headers += 1
        return None
    other = _other_layouts(line, lineno, last_ts)
    if other is not None:
        return other
    lost = _LOST.search(line)
    if lost is not None:
        return Loss(lineno, int(lost.group(1)), int(lost.group(2) or lost.group(3)))
    if _CONTINUATION.match(line) or line.startswith((" ", "\t")) and "[" not in line:
        stats.continuations += 1
    else:
        stats.note_bad(lineno, line)
    return None


_HEADER = re.compile(r"^\s*(?:#|-----|cpus=|version =|CPU \d+ is empty|$)|#####")


def _is_header(line: str) -> bool:
    return _HEADER.search(line) is not None


def _other_layouts(line: str, lineno: int, last_ts: int) -> Record | None:
    """The latency, no-task and function_graph layouts, or None."""
    m = _LATENCY.match(line)
    if m is not None:
        ts = (int(m.group("us")) * 1000 if m.group("us") is not None else
              int(m.group("secs")) * 1_000_000_000 + int(m.group("frac").ljust(9, "0")[:9]))
        return Record(lineno, ts, int(m.group("cpu")), int(m.group("pid")), None,
                      m.group("comm").strip(), m.group("flags"), m.group("name"),
                      m.group("payload").strip())
    m = _NOTASK.match(line)
    if m is not None:
        ts = int(m.group("secs")) * 1_000_000_000 + int(m.group("frac").ljust(9, "0")[:9])
        return Record(lineno, ts, int(m.group("cpu")), None, None, "", m.group("flags") or "",
                      m.group("name"), m.group("payload").strip())
    m = _GRAPH.match(line)
    if m is not None and "=>" not in m.group("call"):
        payload = m.group("call").strip()
        if m.group("dur"):
            payload += f" /* {m.group('dur')} us */"
        return Record(lineno, last_ts, int(m.group("cpu")), None, None, "", "", "funcgraph",
                      payload)
    return None


_KV = re.compile(r"([\w.]+)[=:]\s?([^\s,]+)")


def fields(payload: str) -> dict[str, str]:
    """``key=value`` / ``key: value,`` pairs of a payload (values as text, no commas)."""
    return dict(_KV.findall(payload))


def field(payload: str, key: str) -> str | None:
    """The value of one field, ``key`` given with its ``=`` (``"pfn="``), up to the next
    space: for the events of every other line, where :func:`fields` costs 5× more."""
    at = payload.find(key)
    while at > 0 and payload[at - 1] != " ":
        at = payload.find(key, at + 1)
    if at < 0:
        return None
    start = at + len(key)
    end = payload.find(" ", start)
    return payload[start:] if end < 0 else payload[start:end]


_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+")


def number(text: str | None, hex_digits: bool = False) -> int | None:
    """A number as ftrace prints it; ``hex_digits``: bare digits are hex (the syscall
    tracer prints ``%lx`` without 0x before 6.19, and values < 10 alike after, KF §5.1)."""
    if text is None:
        return None
    if hex_digits:
        m = re.match(r"(?:0x)?([0-9a-fA-F]+)", text)
        return int(m.group(1), 16) if m else None
    m = _NUMBER.match(text)
    return int(m.group(0), 0) if m else None
