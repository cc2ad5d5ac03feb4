"""Reading and writing ptviz msgpack traces (formats v1 and v2; spec in FORMAT.md).

Names are imported on first use (PEP 562), so ``replayer.traceio.atomic`` alone
does not load the reader and numpy.
"""

from ..lazy import lazy_names

_WHERE = {"Event": "events", "Chunk": "reader", "ChunkInfo": "reader",
          "TraceReader": "reader", "TraceWriter": "writer"}

__all__ = ["Chunk", "ChunkInfo", "Event", "TraceReader", "TraceWriter"]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
