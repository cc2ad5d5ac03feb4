"""traces/make_samples.py reproduces the committed samples byte for byte."""

import os
import subprocess
import sys

from tests.conftest import TRACES


import pytest


@pytest.mark.parametrize("script", ["make_samples.py", "make_sim_samples.py"])
def test_samples_are_reproducible(tmp_path, script):
    subprocess.run([sys.executable, os.path.join(TRACES, script), str(tmp_path)],
                   check=True, capture_output=True)
    made = sorted(os.listdir(tmp_path))
    assert made and all(name.endswith(".msgpack") for name in made)
    for name in made:
        with open(os.path.join(TRACES, name), "rb") as f:
            assert (tmp_path / name).read_bytes() == f.read(), name
