"""The engine never pulls in the UI: importing every replayer module leaves textual,
rich and ptviz out of sys.modules (checked in a fresh interpreter)."""

import pkgutil
import subprocess
import sys

import replayer


def test_replayer_imports_no_ui():
    modules = sorted(m.name for m in pkgutil.walk_packages(replayer.__path__, "replayer."))
    assert "replayer.traceio.reader" in modules and "replayer.vocab" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'ptviz'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == ""


def test_no_replayer_source_mentions_ui_packages():
    import pathlib
    root = pathlib.Path(replayer.__file__).parent
    for src in root.rglob("*.py"):
        for line in src.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in ("textual", "rich", "ptviz"), (src, line)
