"""ptviz: replay and show the life of user page-table pages (CLI, UI, ftrace, simulator)."""

from replayer import __version__

__all__ = ["__version__"]
