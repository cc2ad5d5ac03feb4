"""A program that knows nothing of ptviz, recorded on 6.18 and held to its VmPTE.

traces/raw/programs/real-6.18-gcc-{record,plain}.txt.xz: ``gcc -O2 -g -c pt_cases.c``
run under traces/workloads/vmpte_sampler.py (``SAMPLE_S=0.003``), once with ``ptviz
record --keep-text`` and once with traces/capture_plain.sh. The gcc driver starts cc1 and
as with posix_spawn (vfork): in the plain text nothing tells those children from
threads but their exec. At every sample, the change of gcc's table bytes since the
first sample must equal the change of its VmPTE, to within two table pages.
"""

import lzma
import os
import re
import shutil

import pytest

from ptviz.ftrace.importer import import_file
from ptviz.ftrace.record import EVENTS
from replayer.replay import Replay
from tests.conftest import TRACES

DIR = os.path.join(TRACES, "raw", "programs")
SLACK = 2 * 4096


@pytest.mark.parametrize("how", ["record", "plain"])
def test_gcc_table_bytes_follow_its_vmpte(tmp_path, how):
    text = tmp_path / "trace.txt"
    with lzma.open(os.path.join(DIR, f"real-6.18-gcc-{how}.txt.xz"), "rb") as src, \
            open(text, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    header = ({"kernel": {"pt_reclaim": True}, "record": {"events": list(EVENTS)}}
              if how == "record" else {})
    out = tmp_path / "t.msgpack"
    assert import_file(str(text), out, header)["bad_lines"] == 0
    r = Replay.load(out)
    rows, base = [], None
    for _, e in r.events(kinds={"marker"}):
        m = re.fullmatch(r"SAMPLE pid=(\d+) VmPTE=(\d+)", e.fields["text"])
        if m is None:
            continue
        pid, kb = int(m[1]), int(m[2]) * 1024
        state = r.state_at(e.ts)
        mine = state.mm_bytes.get(state.pid_mm.get(pid), 0)
        base = base or (kb, mine)
        rows.append((e.ts, kb - base[0], mine - base[1]))
    assert len(rows) >= 20
    assert max(kernel for _, kernel, _ in rows) >= 8 * 1024      # gcc did grow
    off = [row for row in rows if abs(row[1] - row[2]) > SLACK]
    assert off == [], off
    if how == "plain":
        notes = "\n".join(r.reader.notes)
        assert "of the clones taken for threads were vfork or posix_spawn children" in notes
