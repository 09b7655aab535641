"""The server GC settings: start-up objects frozen, young passes every 10,000 allocations."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import gc
from smsgateway.gctune import tune_for_server
before = gc.get_freeze_count()
tune_for_server()
print(before, gc.get_freeze_count(), *gc.get_threshold())
"""


def test_tune_for_server_freezes_start_up_objects_and_raises_the_threshold() -> None:
    # A child process: freezing this test process's heap would change every later test.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, frozen, *threshold = map(int, out)
    assert before == 0
    assert frozen > 1_000  # modules, classes and functions loaded so far
    assert threshold == [10_000, 20, 20]
