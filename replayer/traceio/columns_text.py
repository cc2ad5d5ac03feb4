"""Two more v2 column forms, for the ftrace importer's raw events: maps that share
their keys, and texts made of repeated words (FORMAT.md, "Version 2").

A raw event keeps its payload text (``{"text": "page=… pfn=0x1a2b order=0
migratetype=2 gfp_flags=GFP_KERNEL|__GFP_ZERO"}``); most of its words repeat from
event to event, so a chunk stores each distinct word once.

- struct: ``{"k": [key, ...], "f": [column, ...]}``: every value is a map with
  those keys, in that order; column ``j`` holds key ``j``'s values.
- words: ``{"w": [distinct words], "c": <bin column>, "n": <bin column>}``: value
  ``i`` is its ``n[i]`` words, ``" ".join``-ed, taken in turn from ``w[c[...]]``.
  Splitting on single spaces and joining again gives back any string exactly.

Both decode lazily: the values are made only when a row needs them (the fold
never reads raw events).
"""

from __future__ import annotations

from array import array
from itertools import count, repeat
from operator import itemgetter
from typing import Any, Callable, Sequence

import numpy as np

#: A text column is stored as words when that takes at most this share of its bytes.
_WORDS_WORTH = 0.8


def encode_struct(values: Sequence[dict], encode: Callable[[Sequence[Any]], Any]) -> Any:
    """Maps with the same string keys as a struct column, or None. O(n) in C: the
    keys compared as tuples, each key's column taken by an itemgetter."""
    keys = tuple(values[0])
    if not all(type(k) is str for k in keys) or \
            list(map(tuple, values)).count(keys) != len(values):
        return None
    return {"k": list(keys), "f": [encode(list(map(itemgetter(k), values))) for k in keys]}


def encode_words(values: Sequence[str], int_array_column: Callable[[np.ndarray], bytes]
                 ) -> Any:
    """Strings as a words column when that is clearly smaller, else None.

    O(words) in C: the texts' words are those of the texts joined by spaces (each
    text's ``split(" ")`` one after another), a text's count is its spaces plus one;
    one ``setdefault`` a word gives the index of its first occurrence, which numpy
    turns into its rank among the distinct words (first-seen order)."""
    n = len(values)
    joined = " ".join(values)
    words = joined.split(" ") if n else []
    first_at: dict[str, int] = {}
    firsts = array("q", map(first_at.setdefault, words, count()))
    size = sum(map(len, first_at)) + 2 * len(words) + n
    if size > _WORDS_WORTH * (len(joined) - (n - 1)):
        return None
    rank = np.empty(len(words), np.int64)
    rank[np.fromiter(first_at.values(), np.int64, len(first_at))] = \
        np.arange(len(first_at))
    codes = rank[np.frombuffer(firsts, np.int64)]
    counts = np.frombuffer(array("q", map(str.count, values, repeat(" ", n))), np.int64) + 1
    return {"w": list(first_at), "c": int_array_column(codes),
            "n": int_array_column(counts)}


def decode_struct(obj: dict, n: int, decode: Callable[[Any, int], Any]
                  ) -> Callable[[], tuple]:
    """Check a struct column of ``n`` maps; returns what makes its values."""
    keys, columns = obj["k"], obj["f"]
    if not (isinstance(keys, tuple) and isinstance(columns, tuple)
            and len(keys) == len(columns) and all(type(k) is str for k in keys)
            and len(set(keys)) == len(keys)):
        raise ValueError("a struct column's keys are not distinct strings, one per column")
    parts = [decode(c, n) for c in columns]

    def make() -> tuple:
        lists = [p.tolist() for p in parts]
        return tuple(dict(zip(keys, vals)) for vals in zip(*lists)) if lists else \
            tuple({} for _ in range(n))
    return make


def decode_words(obj: dict, n: int, ints: Callable[[bytes, int], np.ndarray]
                 ) -> Callable[[], tuple]:
    """Check a words column of ``n`` texts; returns what makes its values."""
    words, codes, counts = obj["w"], obj["c"], obj["n"]
    if not (isinstance(words, tuple) and set(map(type, words)) <= {str}
            and isinstance(codes, bytes) and isinstance(counts, bytes)):
        raise ValueError("a words column is not [words], codes, counts")
    per = ints(counts, n)
    if n and int(per.min()) < 1:
        raise ValueError("a words column has a text of no words")
    total = sum(per.tolist())       # Python ints: a numpy sum of hostile counts wraps
    at = ints(codes, total)
    if total and (int(at.min()) < 0 or int(at.max()) >= len(words)):
        raise ValueError("a words column's index is outside its words")

    def make() -> tuple:
        flat = np.array(words, object)[at].tolist() if total else []
        ends = np.cumsum(per).tolist()
        return tuple(" ".join(flat[a:b]) for a, b in zip([0] + ends[:-1], ends))
    return make
