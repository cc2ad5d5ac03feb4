import pytest

from replayer.errors import UsageError
from replayer.units import format_bytes, format_duration, format_ts, parse_size, parse_time


@pytest.mark.parametrize("text, ns", [
    ("1.5ms", 1_500_000), ("1.5", 1_500_000_000), ("250us", 250_000), ("20ns", 20),
    ("3s", 3_000_000_000), ("0.000000001", 1), (" 2 ms ", 2_000_000), ("1e-3", 1_000_000),
])
def test_parse_time(text, ns):
    assert parse_time(text) == ns


@pytest.mark.parametrize("text, n", [
    ("1M", 1 << 20), ("50G", 50 << 30), ("4KiB", 4096), ("4096", 4096), ("2mb", 2 << 20),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "ms", "1.5 parsecs", "1..2s", "--1"])
def test_bad_time_is_usage_error(bad):
    with pytest.raises(UsageError):
        parse_time(bad)


def test_formats():
    assert format_ts(1_000_001_500) == "1.000001500"
    assert format_duration(1_500_000) == "1.5 ms"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(100) == "100 B"
