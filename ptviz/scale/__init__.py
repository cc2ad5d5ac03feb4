"""Many replays at once: ``ptviz sweep`` (a grid of simulator inputs) and ``ptviz batch``
(a list of traces), one table row per point, run on local processes or a Dask cluster.

- grid.py: the sweep's grid (``--arch all --seeds 0..99`` ...) into points, each with a key.
- row.py: one point's row (simulate and replay, or replay a trace): what runs on a worker.
- executors.py: the local process pool and the Dask cluster, both ``concurrent.futures``
  executors, and the one loop that runs points on either (retries, dedupe, interrupts).
- table.py: the table's columns and its files (Parquet, JSON Lines, CSV), read for --resume.
- summary.py: the table in a few sentences for stdout.
- driver.py: what the commands share: --resume, progress, checkpoints, ctrl+c.

Nothing here imports dask, distributed or pyarrow at module level: they are the optional
``cluster`` extra, and ``ptviz --help`` must not pay for them.
"""
