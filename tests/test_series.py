from replayer.series import Series


def test_step_series_keeps_spikes_and_carries_values():
    s = Series()
    for ts, v in [(10, 1), (20, 5), (20, 2), (35, 0), (70, 3)]:
        s.append(ts, v)
    s.compact()
    assert list(s.ts) == [10, 20, 35, 70] and list(s.values) == [1, 2, 0, 3]
    # buckets [0,25) [25,50) [50,75) [75,100)
    assert s.sample(0, 100, 4) == [2, 2, 3, 3]
    assert s.value_at(34) == 2 and s.value_at(5) == 0


def test_rate_series_counts_increments_per_bucket():
    s = Series(rate=True)
    for ts, total in [(5, 1), (6, 3), (40, 4), (90, 10)]:
        s.append(ts, total)
    assert s.sample(0, 100, 4) == [3, 1, 0, 6]


def test_empty_series():
    assert Series().sample(0, 10, 3) == [0, 0, 0]
    assert Series(rate=True).sample(0, 10, 2) == [0, 0]
