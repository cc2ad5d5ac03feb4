"""``ptviz view``: the Textual terminal UI over the replay engine's queries."""
