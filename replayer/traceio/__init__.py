"""Reading and writing ptviz msgpack traces (format v1; spec in FORMAT.md)."""

from .events import Event
from .reader import Chunk, ChunkInfo, TraceReader
from .writer import TraceWriter

__all__ = ["Chunk", "ChunkInfo", "Event", "TraceReader", "TraceWriter"]
