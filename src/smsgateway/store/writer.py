"""The group-committing writer thread.

Every write in the gateway is a *unit*: a synchronous function taking the writer's
`sqlite3.Connection`. Callers on the event loop submit units and await a future;
the thread takes everything queued (up to `max_batch` units) and runs it as one
transaction:

- a unit that raises makes the thread roll the batch back and run its units again,
  one transaction each: the failing unit's caller gets the exception, the others
  still commit (units carry no savepoint: failures are rare, statements are not);
- a caller's future resolves only after the COMMIT that includes its unit, so
  "accepted means stored" holds;
- if BEGIN or COMMIT fails (disk full, I/O error, locked), every unit of the batch
  gets `StoreUnavailable`, the transaction is rolled back, and the thread carries on
  with the next batch;
- that replay also covers SQLite abandoning the transaction itself (it does on
  SQLITE_FULL, and may on SQLITE_IOERR): whatever still fits commits, the rest fail
  with `StoreUnavailable`. So a unit may run twice; units must act only through the
  connection they are given (no side effects elsewhere) for that to be safe.

Why a thread and not a task: COMMIT fsyncs at checkpoints and can stall for 10-20 ms;
on the loop that would stall every connection. Why one connection: SQLite admits one
writer at a time anyway, and batching many units into one COMMIT is where the
throughput comes from (one fsync-bearing commit for hundreds of rows).

Units submitted from an event loop are handed to the thread once per loop pass, as
one list: a queue put wakes the thread (a futex call and a GIL hand-off), and a
busy loop submits dozens of units a pass. Results are handed back with
`loop.call_soon_threadsafe`, once per batch (and loop).
A caller whose await is cancelled is not un-written: the unit still runs and
commits; only the answer is dropped. Units submitted with
`submit_nowait` have no future; their failures are logged. All units, awaited or
not, run in submission order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import StoreError, StoreUnavailable, translate

log = logging.getLogger(__name__)

T = TypeVar("T")

# Not-awaited units refused because the store could not write are kept and retried.
RETRY_INTERVAL_S = 0.25
MAX_RETRY_UNITS = 100_000

Unit = Callable[[sqlite3.Connection], T]

DEFAULT_MAX_BATCH = 500


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | None,
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future


_STOP = object()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    # The caller may have been cancelled meanwhile; the write happened regardless.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        _settle(future, result, error)


def _unavailable(exc: sqlite3.Error, what: str) -> StoreUnavailable:
    err = StoreUnavailable(f"{what}: {exc}")
    err.__cause__ = exc
    return err


def _as_caller_error(exc: Exception) -> Exception:
    if isinstance(exc, StoreError) or not isinstance(exc, sqlite3.Error):
        return exc
    err = translate(exc)
    err.__cause__ = exc
    return err


class Writer:
    """Owns one connection and one thread; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str = "store-writer",
    ) -> None:
        if conn.isolation_level is not None:
            raise ValueError("writer connection must be in autocommit mode")
        self._conn = conn
        self._max_batch = max_batch
        # Items are lists of jobs (in submission order) or _STOP.
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        # Jobs submitted during the current pass of each loop, not yet handed over.
        self._outbox: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.batches = 0
        self.units = 0
        self._retry: list[_Job] = []
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def _put(self, job: _Job) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")
        loop = job.loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on a loop: hand it over at once
                self._hand_over([job])
                return
        box = self._outbox.get(loop)
        if box is None:
            box = self._outbox[loop] = []
            loop.call_soon(self._flush, loop)
        box.append(job)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._outbox.pop(loop, None)
        if jobs:
            try:
                self._hand_over(jobs)
            except StoreUnavailable as exc:
                # Closed from another loop meanwhile: nobody will run these.
                for job in jobs:
                    if job.future is not None:
                        _settle(job.future, None, exc)

    def _hand_over(self, jobs: list[_Job]) -> None:
        with self._close_lock:
            if self._closed:
                raise StoreUnavailable("store is closed")
            self._queue.put(jobs)

    async def call(self, fn: Unit[T]) -> T:
        """Run `fn` in the next batch; return its result once that batch committed."""
        return await self.submit(fn)

    def submit(self, fn: Unit[T]) -> asyncio.Future[T]:
        """Queue `fn`; the future settles once its batch committed (or failed).

        For callers that are callbacks rather than coroutines: no task is needed to
        wait for a write.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Job(fn, loop, future))
        return future

    def submit_nowait(self, fn: Unit[Any]) -> None:
        """Queue `fn` behind everything already queued; nobody waits for it."""
        self._put(_Job(fn, None, None))

    async def close(self) -> None:
        """Stop taking units, run what is queued, then stop the thread."""
        self._flush(asyncio.get_running_loop())
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # -- thread side ----------------------------------------------------------

    def _main(self) -> None:
        stopping = False
        while not stopping:
            if self._retry:
                # Held units go first, in their order, once the store takes writes
                # again; meanwhile new units (if any) join them.
                try:
                    first = self._queue.get(timeout=RETRY_INTERVAL_S)
                except queue.Empty:
                    first = None
                batch: list[_Job] = self._retry
                self._retry = []
                if first is _STOP:
                    stopping = True
                elif first is not None:
                    batch.extend(first)  # type: ignore[arg-type]
            else:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch = list(first)  # type: ignore[call-overload]
            while not stopping and len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.extend(nxt)  # type: ignore[arg-type]
            # A hand-over may overshoot max_batch; split so no transaction grows
            # beyond it (a big transaction holds the write lock and memory longer).
            for start in range(0, len(batch), self._max_batch):
                chunk = batch[start : start + self._max_batch]
                try:
                    self._run_batch(chunk)
                except BaseException as exc:  # pragma: no cover - last-resort safety net
                    log.exception("store writer batch crashed")
                    # An open transaction would make every later BEGIN fail.
                    self._rollback()
                    err = StoreUnavailable(f"store writer failed: {exc!r}")
                    self._deliver([(job, None, err) for job in chunk])
        if self._retry:
            log.error("store writer stopped with %d refused writes unapplied", len(self._retry))

    def _run_batch(self, batch: list[_Job]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, exc, "cannot begin a write transaction")
            return
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        for job in batch:
            try:
                result = job.fn(conn)
            except Exception as exc:
                # Optimistic batching: units run without savepoints (two statements
                # each saved on every unit), and the rare failure costs a replay. The
                # failed unit may have written half its rows and SQLite may even have
                # dropped the transaction (SQLITE_FULL does): roll everything back and
                # run the batch again one unit per transaction, so each unit commits
                # or fails on its own.
                log.debug("store writer: unit failed (%r); replaying batch singly", exc)
                self._rollback()
                self._run_singly(batch)
                return
            outcomes.append((job, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            err = _unavailable(exc, "commit failed")
            outcomes = [(j, None, err) for j, _, _ in outcomes]
        self.batches += 1
        self.units += len(outcomes)
        self._deliver(outcomes)

    def _run_singly(self, jobs: list[_Job]) -> None:
        conn = self._conn
        for i, job in enumerate(jobs):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._fail_all(jobs[i:], exc, "cannot begin a write transaction")
                return
            outcome: tuple[_Job, Any, BaseException | None]
            try:
                result = job.fn(conn)
            except Exception as exc:
                self._rollback()
                outcome = (job, None, _as_caller_error(exc))
            else:
                try:
                    conn.execute("COMMIT")
                    outcome = (job, result, None)
                except sqlite3.Error as exc:
                    self._rollback()
                    outcome = (job, None, _unavailable(exc, "commit failed"))
            self.batches += 1
            self.units += 1
            self._deliver([outcome])

    def _fail_all(self, jobs: list[_Job], exc: sqlite3.Error, what: str) -> None:
        err = _unavailable(exc, what)
        self._deliver([(job, None, err) for job in jobs])

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("store writer: ROLLBACK failed")

    def _deliver(self, outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        # One wake-up per loop per batch, not per unit: call_soon_threadsafe writes
        # to the loop's self-pipe each time, which at 500 units a batch adds up.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]]
        by_loop = {}
        for job, result, error in outcomes:
            if job.future is None or job.loop is None:
                if isinstance(error, StoreUnavailable) and len(self._retry) < MAX_RETRY_UNITS:
                    # Nobody waits for this unit, so nobody could retry it: an SMSC id
                    # or a receipt would be lost while the disk is full or the file
                    # locked. Keep it and run it again, first, when writes resume.
                    self._retry.append(job)
                elif error is not None:
                    log.error("store write (not awaited) failed: %r", error, exc_info=error)
                continue
            by_loop.setdefault(job.loop, []).append((job.future, result, error))
        for loop, settled in by_loop.items():
            # RuntimeError: the caller's loop is closed; nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, settled)
