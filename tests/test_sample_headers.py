"""The simulated and hand-written samples say what the kernel model says: each header's
kernel config is what ``kernels.resolve`` gives for its arch and kernel version, and its
arch entry is the shared profile's. A flag a sample sets against the model (as
``ptviz simulate --set`` does) is listed in the header's ``overridden``, which is how a
sample documents that it differs; those flags are applied as overrides here."""

import json
import os

import pytest

from ptviz import arches
from ptviz.sim import kernels
from replayer.traceio import TraceReader
from tests.conftest import TRACES

MODELLED = ("sim", "hand")      # real captures carry the kernel they were recorded on


def modelled_samples() -> list[str]:
    names = []
    for name in sorted(os.listdir(TRACES)):
        if name.endswith(".msgpack"):
            with TraceReader(os.path.join(TRACES, name)) as r:
                if r.header.get("source") in MODELLED:
                    names.append(name)
    return names


SAMPLES = modelled_samples()


def test_the_samples_are_found():
    # Three hand-written (traces/make_samples.py), four simulated (make_sim_samples.py).
    assert len(SAMPLES) == 7 and "leak-6.13-x86_64.msgpack" in SAMPLES


def _plain(value):
    """A header value as JSON has it (the reader gives arrays as tuples)."""
    return json.loads(json.dumps(value))


def _typed(value) -> str:
    """A header value as ``--set`` takes it."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_header_config_is_the_models(name):
    with TraceReader(os.path.join(TRACES, name)) as r:
        header = r.header
    arch = arches.get(header["arch"]["name"])
    kernel = header["kernel"]
    overrides = {flag: _typed(kernel[flag]) for flag in kernel.get("overridden", [])}
    model = kernels.resolve(arch, kernel["version"], overrides)
    assert _plain(kernel) == _plain(model.header()), name
    assert _plain(header["arch"]) == _plain(arch.header()), name


def test_the_6_13_leak_sample_frees_as_6_13_x86_64_does():
    """6.13 on x86_64: no PT_RECLAIM, tables ride the page batch and are freed right after
    the TLB flush (no RCU, so no walker sync): docs/kernel-facts.md §1.2, §2.5, §8.2."""
    with TraceReader(os.path.join(TRACES, "leak-6.13-x86_64.msgpack")) as r:
        kernel = r.header["kernel"]
        events = list(r.events())
    assert (kernel["pt_reclaim"], kernel["table_free"], kernel["sync"]) == (False, "page",
                                                                            "none")
    kinds = [e.kind for e in events]
    assert not {"rcu_queue", "rcu_invoke", "table_sync_begin"} & set(kinds)
    frees = [e for e in events if e.kind == "table_free"]
    assert len(frees) == 3 and {e.fields["path"] for e in frees} == {"direct"}
    # Each free comes after the exit's TLB flush and its IPI was answered.
    last_flush = max(i for i, k in enumerate(kinds) if k == "tlb_flush")
    assert last_flush < kinds.index("table_free")
    assert kinds.index("ipi_exit") < kinds.index("table_free")


def test_the_overridden_sample_says_so():
    with TraceReader(os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack")) as r:
        kernel = r.header["kernel"]
    assert list(kernel["overridden"]) == ["table_free"]
    # Without the override, 6.14 x86_64 frees by RCU: the use-after-free needs the override.
    assert kernels.resolve(arches.get("x86_64"), "6.14").table_free == "rcu"
