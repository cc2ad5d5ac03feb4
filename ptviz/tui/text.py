"""Strings from a trace, made safe to show: a comm, a marker, a kernel version or a
foreign kind's name can hold anything, and must neither drive the terminal (control
characters) nor be read as Textual markup (square brackets)."""

from __future__ import annotations

from typing import Any


def printable(text: Any) -> str:
    """``text`` on one line, with every non-printable character shown as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def markup_safe(text: Any) -> str:
    """:func:`printable`, with markup escaped, for a string inside Textual markup."""
    return printable(text).replace("[", r"\[")
