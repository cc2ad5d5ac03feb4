"""Writing a command's result: JSON for machines, or its text rendering."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable


def emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(data))
