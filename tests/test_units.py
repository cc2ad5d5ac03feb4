import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.errors import UsageError
from replayer.units import (AmountError, format_bytes, format_duration, format_size, format_ts,
                            parse_count, parse_size, parse_time, shown)


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


# Beyond int64 nanoseconds, at once: 1e999999999 must not build a billion-digit number.
@pytest.mark.parametrize("bad", ["", "ms", "1.5 parsecs", "1..2s", "--1", "1e999999999",
                                 "9.3e9", "-1e999999", "1e300ms"])
def test_bad_time_is_usage_error(bad):
    with pytest.raises(UsageError):
        parse_time(bad)


def test_formats():
    assert format_ts(1_000_001_500) == "1.000001500"
    assert format_duration(1_500_000) == "1.5 ms"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(100) == "100 B"


# -- sizes and counts: one grammar, binary or decimal suffixes ------------------------

SIZE_SPELLINGS = {1 << 10: ("K", "k", "KB", "kb", "KiB", "kib"),
                  1 << 20: ("M", "m", "MB", "MiB"), 1 << 30: ("G", "g", "GiB"),
                  1 << 40: ("T", "TB"), 1 << 50: ("P",), 1: ("", "B", "b")}
COUNT_SPELLINGS = {10**3: ("k", "K"), 10**6: ("M", "m"), 10**9: ("G", "g"), 10**12: ("T",),
                   1: ("",)}


@given(st.integers(0, 1 << 60))
def test_a_formatted_size_reads_back(n):
    text = format_size(n)
    assert parse_size(text) == n
    assert len(text) <= len(str(n))


@given(st.integers(-(10**6), 10**6), st.sampled_from(sorted(SIZE_SPELLINGS)), st.data())
def test_size_suffixes_are_powers_of_1024(n, scale, data):
    unit = data.draw(st.sampled_from(SIZE_SPELLINGS[scale]))
    space = data.draw(st.sampled_from(["", " "]))
    assert parse_size(f"{n}{space}{unit}") == n * scale


@given(st.integers(-(10**6), 10**6), st.sampled_from(sorted(COUNT_SPELLINGS)), st.data())
def test_count_suffixes_are_powers_of_1000(n, scale, data):
    unit = data.draw(st.sampled_from(COUNT_SPELLINGS[scale]))
    assert parse_count(f"{n}{unit}") == n * scale


@given(st.integers(0, 10**9))
def test_a_count_written_with_a_fraction_reads_back(n):
    # 1234567 as "1234.567k" and "1.234567M": the suffix moves the point, nothing rounds.
    assert parse_count(f"{n // 1000}.{n % 1000:03d}k") == n
    assert parse_count(f"{n // 10**6}.{n % 10**6:06d}M") == n
    assert parse_count(f"{n}e0") == n


@given(st.integers(1, 1 << 40), st.integers(1, 9))
def test_a_size_that_is_not_whole_bytes_is_refused(n, tenths):
    with pytest.raises(AmountError) as err:
        parse_size(f"{n}.{tenths}", "--param size")
    assert err.value.problem == "not a whole number of bytes"


@pytest.mark.parametrize("text, size, count", [
    ("2M", 2 << 20, 2_000_000), ("500k", 512_000, 500_000), ("1.5G", 3 << 29, 1_500_000_000),
    (" 64 M ", 64 << 20, 64_000_000), ("+3", 3, 3), ("-0", 0, 0), ("1e3", 1000, 1000),
    (".5k", 512, 500),
])
def test_one_grammar_two_meanings(text, size, count):
    assert parse_size(text) == size and parse_count(text) == count


GARBAGE = ["", " ", "nan", "inf", "-inf", "0x10", "1_0", "٣", "1..2", "--1", "+-1", "1e",
           "e3", ".", "1 0", "1K B", "1\nG", "2**8", "1/2", "1.5.5", "K", "1 K iB", "１",
           "10%"]


@pytest.mark.parametrize("parse", [parse_size, parse_count])
@pytest.mark.parametrize("text", GARBAGE + ["1Q", "2 parsecs", "5KiBs"])
def test_garbage_is_refused_in_one_line_naming_the_argument(parse, text):
    with pytest.raises(AmountError) as err:
        parse(text, "--param size")
    message = str(err.value)
    assert "\n" not in message and message.startswith("--param size ")
    assert err.value.problem in ("not a number", "not a whole number of bytes",
                                 "not a whole number") or "unknown unit" in err.value.problem


@pytest.mark.parametrize("parse", [parse_size, parse_count])
def test_huge_exponents_are_refused_at_once(parse):
    with pytest.raises(AmountError, match="out of range"):
        parse("1e999999999")
    with pytest.raises(AmountError, match="not a whole number"):
        parse("1e-999999999")
    assert parse("0e999999999") == 0


@given(st.text(max_size=16))
def test_any_text_is_an_amount_or_one_line_naming_the_argument(text):
    for parse in (parse_size, parse_count):
        try:
            n = parse(text, "--events")
        except AmountError as err:
            message = str(err)
            assert "\n" not in message
            assert message.startswith(f"--events {shown(text)}: ")
        else:
            assert isinstance(n, int) and text.strip()[:1] in set("+-.0123456789")
