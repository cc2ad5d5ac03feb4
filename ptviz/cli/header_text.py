"""A trace header in words, for ``ptviz info`` and ``ptviz replay``: every value as a
user reads it (y/n, ``unknown``, a command as a shell line), never a Python repr."""

from __future__ import annotations

import shlex
from typing import Any, Callable


def value_words(value: Any) -> str:
    """One value: y/n for a flag, ``unknown`` for nil (the trace does not know it, as a
    kernel config that could not be read), ``none`` for an empty list, a list joined
    with "+" (kernel-config style: ``overridden=table_free+sync``), a map as pairs."""
    if value is True or value is False:
        return "y" if value else "n"
    if value is None:
        return "unknown"
    if isinstance(value, (list, tuple)):
        return "+".join(map(value_words, value)) if value else "none"
    if isinstance(value, dict):
        return pairs(value) or "none"
    return str(value)


def pairs(mapping: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``key=value`` pairs, as ftrace prints fields; a nested map's entries as
    ``key.sub=value``. Empty lists and maps are left out: there is nothing to say."""
    out = []
    for key, value in mapping.items():
        if key in skip or _empty(value):
            continue
        if isinstance(value, dict):
            out.append(pairs({f"{key}.{sub}": v for sub, v in value.items()}))
        else:
            out.append(f"{key}={value_words(value)}")
    return " ".join(out)


def header_lines(header: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` lines for each header entry, in the header's order; a label
    may repeat (one warning a line); entries with nothing in them are left out."""
    out: list[tuple[str, str]] = []
    for key, value in header.items():
        if _empty(value):
            continue
        render = _RENDER.get(key)
        texts = render(value) if render is not None else [value_words(value)]
        out += [(key, text) for text in texts]
    return out


def command_line(value: Any) -> str:
    """A command as a shell would take it back: words quoted where they must be."""
    if isinstance(value, (list, tuple)):
        return shlex.join(str(word) for word in value)
    return str(value)


def arch_words(arch: dict[str, Any]) -> str:
    """``x86_64`` with ``(assumed ...)`` when the ftrace importer assumed it."""
    name = arch.get("name")
    text = "unknown" if name is None else str(name)
    if arch.get("inferred"):
        text += " (assumed by the ftrace importer; ptviz convert --arch sets it)"
    return text


def _empty(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, str)) and len(value) == 0


def _arch(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [value_words(value)]
    rest = pairs(value, skip=("name", "inferred"))
    return [arch_words(value) + (f": {rest}" if rest else "")]


def _kernel(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [value_words(value)]
    version = value.get("version")
    rest = pairs(value, skip=("version",))
    return [("version unknown" if version is None else str(version))
            + (f": {rest}" if rest else "")]


def _workload(value: Any) -> list[str]:
    """``walkers: size=8M walker=pte_offset_map``: the name, then the parameters (the
    simulator's model parameters among them), then the command it ran, if any."""
    if not isinstance(value, dict):
        return [command_line(value)]
    params = {**(value.get("params") or {}), **(value.get("model") or {})}
    name = value.get("name")
    text = "unnamed" if name is None else str(name)
    rest = " ".join(filter(None, (pairs(params),
                                  pairs(value, skip=("name", "params", "model", "command")))))
    if rest:
        text += f": {rest}"
    if value.get("command"):
        text += f" ({command_line(value['command'])})"
    return [text]


def _lines(value: Any) -> list[str]:
    """One line per item (warnings, notes)."""
    if isinstance(value, (list, tuple)):
        return [value_words(item) for item in value]
    return [value_words(value)]


def _record(value: Any) -> list[str]:
    """How ``ptviz record`` captured: the events it enabled and could not, losses,
    probes and the tail, as a sentence."""
    if not isinstance(value, dict):
        return [value_words(value)]
    parts = []
    if value.get("events"):
        parts.append(f"{len(value['events'])} events enabled")
    if value.get("missing_events"):
        parts.append("not available: " + ", ".join(map(value_words, value["missing_events"])))
    lost = value.get("lost")
    if isinstance(lost, dict):
        dropped = {cpu: n for cpu, n in lost.items() if n}
        parts.append("no events lost" if not dropped else "lost " + ", ".join(
            f"{value_words(n)} on CPU {cpu}" for cpu, n in dropped.items()))
    if "probes" in value:
        probes = value.get("probes") or ()
        style = value.get("probe_style")
        parts.append(f"probes ({style}): {', '.join(map(str, probes))}" if probes and style
                     else f"probes: {', '.join(map(str, probes))}" if probes else "no probes")
    if value.get("tail_s") is not None:
        parts.append(f"tail {value_words(value['tail_s'])} s")
    rest = pairs(value, skip=("events", "missing_events", "lost", "probes", "probe_style",
                              "tail_s"))
    return ["; ".join(parts + ([rest] if rest else []))]


_RENDER: dict[str, Callable[[Any], list[str]]] = {
    "arch": _arch, "kernel": _kernel, "workload": _workload, "command": lambda v: [
        command_line(v)], "warnings": _lines, "notes": _lines, "record": _record,
}
