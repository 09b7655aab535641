"""Cyclic-GC settings for the long-running processes (gateway and SMSC simulator)."""

from __future__ import annotations

import gc


def tune_for_server() -> None:
    """Cheaper cyclic GC for a long-running server, once everything is loaded.

    perf showed about 5% of the gateway's CPU under load in the cyclic collector:
    every 700 allocations a young-generation pass, and the old-generation passes
    walk every module, class and settings object made at start-up. Those start-up
    objects live for the whole run, so they are frozen out of collection; the
    young-generation pass runs every 10,000 allocations instead of 700. Most of
    what a request allocates is freed by reference counting anyway; only cycles
    wait for the collector, a little longer now.

    The old-generation passes were also the longest pauses: in the simulator under
    3,000 submits/s, 30-70 ms each, during which it answered nothing, so every
    in-flight request at the gateway waited for it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
