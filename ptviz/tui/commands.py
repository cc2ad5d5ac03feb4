"""The command palette (ctrl+p): every action of the main screen, by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

#: (title, action, help): what the palette offers.
ACTIONS = (
    ("Zoom in", "zoom(0.5)", "halve the time shown, about the cursor (+)"),
    ("Zoom out", "zoom(2)", "double the time shown (-)"),
    ("Fit the whole trace", "fit", "0"),
    ("Cursor to the start", "home", "home"),
    ("Cursor to the end", "end", "end"),
    ("Pan left", "pan(-1)", "one screen (shift+←)"),
    ("Pan right", "pan(1)", "one screen (shift+→)"),
    ("Next event of the selected class", "next_event(1)", "n"),
    ("Previous event of the selected class", "next_event(-1)", "N"),
    ("Select the next event class", "cycle_class(1)", "]"),
    ("Select the previous event class", "cycle_class(-1)", "["),
    ("Next marker", "next_marker(1)", "m"),
    ("Previous marker", "next_marker(-1)", "M"),
    ("Next finding", "next_finding(1)", "f"),
    ("Previous finding", "next_finding(-1)", "F"),
    ("Set marker A at the cursor", "mark('a')", "a"),
    ("Set marker B at the cursor", "mark('b')", "b"),
    ("Go to a time", "goto", "g"),
    ("Show the next address space's VmPTE counter", "cycle_mm", "s"),
    ("Hide or show CPUs with no events", "toggle_idle", "e"),
    ("Help: keys and glyphs", "help", "?"),
    ("Quit", "quit", "q"),
)


class TraceCommands(Provider):
    async def discover(self) -> Hits:
        for title, action, keys in ACTIONS:
            yield DiscoveryHit(title, partial(self._run, action), help=keys)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, keys in ACTIONS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, action),
                          help=keys)

    async def _run(self, action: str) -> None:
        await self.app.run_action(action)
