"""ptviz's replay engine: event vocabulary, trace I/O, page-table state over time.

Pure Python with msgpack and sortedcontainers; it never imports textual, rich
or ptviz, so CI scripts and other tools can use it without the UI.
"""

__version__ = "0.1.0"
