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


def test_bulk_appends_read_the_same_as_single_ones_before_and_after_compaction():
    import numpy as np
    from replayer.series import BLOCK_MIN
    bulk, single = Series(), Series()
    t = 0
    for step in range(12):
        # Runs around the size at which bulk points move out of the arrays, mixed
        # with single appends, and instants recorded twice.
        n = (BLOCK_MIN // 3) * (step % 4) + step
        ts = np.repeat(np.arange(t, t + n // 2 + 1, dtype=np.int64), 2)[:n]
        values = np.arange(n, dtype=np.int64) * (step + 1)
        bulk.extend(ts, values)
        for a, b in zip(ts.tolist(), values.tolist()):
            single.append(a, b)
        t += n
        bulk.append(t, -step)
        single.append(t, -step)
        t += 3
        probes = [0, 1, t // 3, t // 2, t - 4, t - 1, t, t + 5]
        assert len(bulk) == len(single)
        assert [bulk.value_at(p) for p in probes] == [single.value_at(p) for p in probes]
        assert bulk.sample(0, t + 1, 7) == single.sample(0, t + 1, 7)
        assert [list(a) for a in bulk._pair()] == [list(a) for a in single._pair()]
    bulk.compact()
    single.compact()
    assert list(bulk.ts) == list(single.ts) and list(bulk.values) == list(single.values)
    assert len(set(bulk.ts)) == len(bulk.ts)
    assert [bulk.value_at(p) for p in range(-1, t + 2, 97)] == \
        [single.value_at(p) for p in range(-1, t + 2, 97)]
    assert type(bulk.ts) is type(single.ts) and type(bulk.value_at(t)) is int
