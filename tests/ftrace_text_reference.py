"""ftrace text's batch lines as ptviz/convert/ftrace_text.py wrote them before it read
a chunk's columns and used ``%`` templates (commit 8ca59e3): the reference its output
is compared with, byte for byte (tests/test_convert_columns.py)."""

from array import array
from operator import itemgetter

import numpy as np

from ptviz.convert.ftrace_text import (_NAME, _TS_END, PREFIX, N_COMMON, MARKER, RAW,
                                       UsageError, _column, _kernel_lines, _line, _task)


def reference_text(stream, batches) -> str:
    """The lines of every batch (no header)."""
    specs = stream.kinds.by_id
    templates = {spec.id: _template(spec) for spec in stream.kinds}
    return "".join(_lines(batch, specs, templates) for batch in batches)


def _template(spec) -> str | None:
    """``str.format`` template of a kind's ptviz_ line (task, CPU, time, then the
    converted fields), or None for the kinds written another way."""
    if spec.id in (MARKER, RAW) or not _NAME.match(spec.name) or \
            not all(_NAME.match(f) for f in spec.fields):
        return None
    fields = " ".join(f"{f}={{}}" for f in spec.fields)
    return f"{{}} [{{:03d}}] ..... {{}}: {PREFIX}{spec.name}: {fields}".rstrip()


def _lines(batch, specs: dict, templates: dict) -> str:
    """A batch's lines: column by column for each kind (conversions in C through
    ``map``), row by row only for markers, raw events and odd tasks."""
    rows = batch.rows
    n = len(rows)
    stamps = np.frombuffer(batch.stamps, np.int64) if isinstance(batch.stamps, array) \
        else np.array(batch.stamps, np.int64)
    if n and (int(stamps.min()) < 0 or int(stamps.max()) >= _TS_END):
        bad = int(stamps.min()) if int(stamps.min()) < 0 else int(stamps.max())
        raise UsageError(f"an event at {bad} ns: ftrace text holds times from 0 to "
                         f"2**63 - 2 ns")
    secs, ns = np.divmod(stamps, 1_000_000_000)
    times = np.array(list(map("{:5d}.{:09d}".format, secs.tolist(), ns.tolist())), object)
    pids = list(map(itemgetter(3), rows))
    comm_of = batch.comms.get
    task_of = {p: _task(p, comm_of(p)) for p in set(pids)}
    tasks = list(map(task_of.__getitem__, pids))
    shown = np.array([t[0] for t in tasks], object)
    odd = {p for p, t in task_of.items() if t[1]}    # tasks whose line needs _pid/_comm
    kinds = np.fromiter(map(itemgetter(0), rows), np.int64, n)
    order = np.argsort(kinds, kind="stable")
    cuts = np.flatnonzero(np.diff(kinds[order])) + 1
    lines = np.empty(n, object)
    for at in np.split(order, cuts) if n else ():
        where = at.tolist()
        kind = int(kinds[at[0]])
        template = templates[kind]
        group = [rows[i] for i in where]
        if template is not None and not (odd and any(rows[i][3] in odd for i in where)):
            spec = specs[kind]
            columns = list(zip(*group))
            converted = [_column(f, columns[N_COMMON + j]) for j, f in enumerate(spec.fields)]
            lines[at] = list(map(template.format, shown[at].tolist(), columns[2],
                                 times[at].tolist(), *converted))
        else:
            made = _kernel_lines(kind, group, shown[at].tolist(), times[at].tolist()) \
                if not (odd and any(rows[i][3] in odd for i in where)) else None
            lines[at] = made if made is not None else [
                _line(row, tasks[i], times[i], specs) for row, i in zip(group, where)]
    return "\n".join(lines.tolist()) + "\n" if n else ""


