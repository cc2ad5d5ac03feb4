"""Truncated, flipped, foreign and empty files: every complete chunk or one clean error."""

import contextlib
import io
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from ptviz.cli import main
from replayer.errors import (BadMagic, CorruptTrace, EmptyFile, TraceFormatError,
                             TruncatedTrace, UnsupportedVersion)
from replayer.traceio import Event, TraceReader, TraceWriter
from replayer.traceio.framing import FRAME_HEAD


def make(path, n=40, chunk_events=7):
    evs = [Event(1000 + 10 * i, "pte_set", i % 3, 100 + i % 2, "w",
                 {"mm": 1, "pfn": 0x1000 + i, "n": 1, "inferred": None}) for i in range(n)]
    with TraceWriter(path, {"source": "test"}, chunk_events=chunk_events) as w:
        for e in evs:
            w.add_event(e)
    with TraceReader(path) as r:
        ends = [c.offset + FRAME_HEAD.size for c in r.chunks]
        # A chunk is complete when its whole frame lies before the cut.
        sizes = [r._frame(c.offset)[1] for c in r.chunks]
        counts = [c.count for c in r.chunks]
        header_end = r._header_end
    return evs, [e + s for e, s in zip(ends, sizes)], counts, header_end


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("dmg") / "t.msgpack"
    evs, chunk_ends, counts, header_end = make(path)
    return path, path.read_bytes(), evs, chunk_ends, counts, header_end


@pytest.mark.slow
def test_cut_at_every_byte(sample, tmp_path):
    path, data, evs, chunk_ends, counts, header_end = sample
    cut_path = tmp_path / "cut.msgpack"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(TraceFormatError):
                TraceReader(cut_path)
            continue
        complete = sum(1 for end in chunk_ends if end <= cut)
        if complete == 0:
            # Nothing readable: an error, so that CI cannot pass on an empty replay.
            with pytest.raises(TruncatedTrace, match="no complete chunk"):
                TraceReader(cut_path)
            continue
        with TraceReader(cut_path) as r:
            assert len(r.warnings) == 1, (cut, r.warnings)
            assert str(cut_path) in r.warnings[0] and "byte" in r.warnings[0]
            assert list(r.events()) == evs[:sum(counts[:complete])], cut
            assert r.truncated_at is not None or r.has_footer


def test_intact_file_has_no_warning(sample):
    with TraceReader(sample[0]) as r:
        assert r.warnings == [] and r.has_footer
        r.verify()


@pytest.mark.slow
def test_flipping_any_byte_is_an_error(sample, tmp_path):
    path, data, *_ = sample
    bad = tmp_path / "flip.msgpack"
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[pos] ^= mask
            bad.write_bytes(bytes(damaged))
            with pytest.raises(TraceFormatError):
                with TraceReader(bad) as r:
                    r.verify()
                    r.verify_checksums()


@given(pos=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_info_reports_a_flipped_bit_in_one_line(sample, tmp_path_factory, pos, bit):
    path, data, *_ = sample
    damaged = bytearray(data)
    damaged[pos % len(data)] ^= 1 << bit
    bad = tmp_path_factory.mktemp("flip") / "flip.msgpack"
    bad.write_bytes(bytes(damaged))
    err_buf = io.StringIO()
    with contextlib.redirect_stderr(err_buf), contextlib.redirect_stdout(io.StringIO()):
        assert main(["info", str(bad)]) == 2
    err = err_buf.getvalue()
    assert err.count("\n") == 1 and str(bad) in err and "byte" in err


@pytest.mark.parametrize("content, error, words", [
    (b"", EmptyFile, "empty"),
    (b"PK\x03\x04 this is a zip file", BadMagic, "not a ptviz trace"),
    (b"\x89PTVIZ\r\n\x00\x03" + b"\x00" * 40, UnsupportedVersion, "version 3"),
    (b"\x89PTV", TruncatedTrace, "preamble"),
    (b"# tracer: nop\n", BadMagic, "not a ptviz trace"),
])
def test_bad_files_raise_the_right_error(tmp_path, content, error, words):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(content)
    with pytest.raises(error) as info:
        TraceReader(bad)
    assert words in str(info.value) and str(bad) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"nope", b"\x89PTVIZ\r\n\x00\x09"])
def test_cli_exit_2_and_one_line_without_traceback(tmp_path, content):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "ptviz", "info", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"ptviz: {bad}: byte ")
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"nope")
    proc = subprocess.run([sys.executable, "-m", "ptviz", "--debug", "info", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.msgpack")]) == 2
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"ptviz: {tmp_path / 'nope.msgpack'}: no such file",
                   f"ptviz: {tmp_path}: is a directory, not a trace"]


def test_hostile_chunk_with_valid_crc_is_reported(tmp_path):
    """A crafted chunk (right CRC, wrong shape) is an error, not a crash."""
    import zlib
    from binascii import crc_hqx
    import struct
    import msgpack
    good = tmp_path / "good.msgpack"
    make(good, n=3)
    with TraceReader(good) as r:
        header_end = r._header_end
    data = good.read_bytes()[:header_end]
    for rows in ([[24, "x", 0, 1, "t"]], [[24, 0, 0]], [[9999, 0, 0, 1]], "rows"):
        payload = msgpack.packb([0, 0, 0, 1, [], rows])
        head = struct.pack(">cII", b"C", len(payload), zlib.crc32(payload))
        bad = tmp_path / "hostile.msgpack"
        bad.write_bytes(data + head + struct.pack(">H", crc_hqx(head, 0xFFFF)) + payload)
        with pytest.raises(CorruptTrace):
            with TraceReader(bad) as r:
                r.verify()
