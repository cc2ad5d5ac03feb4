"""What a loaded replay keeps: nothing the load itself replaced."""

from array import array

from ptviz.sim.run import simulate
from replayer.replay import Replay


def _arrays_reachable(obj, depth: int = 3) -> list[array]:
    """Arrays reachable from ``obj`` through attributes, containers and bound methods."""
    found, seen, todo = [], set(), [(obj, 0)]
    while todo:
        x, d = todo.pop()
        if id(x) in seen or d > depth:
            continue
        seen.add(id(x))
        if isinstance(x, array):
            found.append(x)
            continue
        owner = getattr(x, "__self__", None)
        if owner is not None and not isinstance(x, type):
            todo.append((owner, d + 1))
        if isinstance(x, dict):
            todo.extend((v, d + 1) for v in x.values())
        elif isinstance(x, (list, tuple)):
            todo.extend((v, d + 1) for v in x[:64])
        elif hasattr(x, "__dict__") and d == 0:
            todo.extend((v, d + 1) for v in vars(x).values())
    return found


def test_the_folder_keeps_no_series_array_that_compaction_replaced(tmp_path):
    path = str(tmp_path / "fork.msgpack")
    simulate(path, "x86_64", "6.14", "fork-exit", {"children": "4"}, {}, cpus=4, seed=3)
    with Replay.load(path) as replay:
        live = {id(a) for name in replay.series.names()
                for a in (replay.series.get(name).ts, replay.series.get(name).values)}
        held = [a for a in _arrays_reachable(replay.folder) if len(a) and id(a) not in live
                and a is not replay.log.data]
        # A series array reached from the folder is a live one: compaction's leftovers
        # (each as large as the series) would double its memory.
        series_like = [a for a in held if a.typecode == "q" and len(a) > 100]
        assert not series_like, [len(a) for a in series_like]


def test_running_a_loaded_replay_again_changes_nothing(tmp_path):
    import json
    from replayer.report import build_report
    path = str(tmp_path / "fork.msgpack")
    simulate(path, "x86_64", "6.14", "fork-exit", {"children": "2"}, {}, cpus=2, seed=1)
    with Replay.load(path) as replay:
        before = json.dumps(build_report(replay), sort_keys=True)
        replay.run()
        assert json.dumps(build_report(replay), sort_keys=True) == before
