"""Compressed traces (gzip, xz, zstd) are read by every command as if they were not,
whatever is inside (msgpack, ftrace text); a damaged one is one line naming it."""

import gzip
import json
import lzma
import os

import pytest
import zstandard

from ptviz.cli import main
from tests.conftest import TRACES

SAMPLE = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
PACK = {"gz": gzip.compress, "xz": lzma.compress,
        "zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def report(capsys, path):
    assert main(["replay", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    out["trace"].pop("path", None)
    return out


@pytest.mark.parametrize("ext", sorted(PACK))
def test_a_compressed_trace_replays_as_the_plain_one(tmp_path, capsys, ext):
    packed = tmp_path / f"t.msgpack.{ext}"
    packed.write_bytes(PACK[ext](open(SAMPLE, "rb").read()))
    assert report(capsys, packed) == report(capsys, SAMPLE)
    assert main(["info", str(packed)]) == 0
    assert "events" in capsys.readouterr().out
    assert main(["convert", str(packed), str(tmp_path / "t.jsonl")]) == 0


@pytest.mark.parametrize("ext", sorted(PACK))
def test_compressed_ftrace_text_is_imported(tmp_path, capsys, ext):
    text = tmp_path / "t.txt"
    assert main(["convert", SAMPLE, str(text)]) == 0
    packed = tmp_path / f"capture.txt.{ext}"
    packed.write_bytes(PACK[ext](text.read_bytes()))
    capsys.readouterr()
    assert report(capsys, packed) == report(capsys, text)


def test_a_damaged_compressed_trace_is_one_line(tmp_path, capsys):
    packed = tmp_path / "t.msgpack.gz"
    packed.write_bytes(gzip.compress(open(SAMPLE, "rb").read())[:400])
    assert main(["replay", str(packed)]) == 2
    err = capsys.readouterr().err
    assert f"{packed}: is gzip-compressed but does not decompress" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
