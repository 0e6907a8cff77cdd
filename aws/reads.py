"""Independent read-only AWS calls in parallel: a small bounded pool per preflight.

A preflight starts the reads that do not depend on each other (the target side
while the source image is inspected; per key its DescribeKey, ListAliases and
CreateGrant DryRun; per launch role its simulations) and takes their results in
the order the checks always took them. A result is the read's value, or the very
exception the read raised, re-raised where it is taken: so what a failed read means
is still decided where it always was (``aws.errors.read_outcome``, and the callers'
``except`` clauses and ``preflight_read``), and the refusal a person reads does not
depend on which read finished first.

``WORKERS = 1`` turns parallelism off (each read runs where it is started, in the
order started): the benchmark's sequential baseline, same code.

Each read runs in the caller's context (``contextvars``: the log context) and under
the caller's preflight deadline (``aws.sessions``). A read not yet begun when its
result is wanted runs in the thread that wants it (so a read waiting for the reads it
started never waits for a place in the pool).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, TypeVar

from aws.errors import read_outcome
from aws.sessions import carry_preflight_deadline

T = TypeVar("T")

# Reads in flight at once per preflight: a share to a few accounts with one key and
# two launch roles has about 8 independent reads in its widest wave. AWS's limits are
# per account and region (EC2 about 100 reads/s, KMS 5,500+/s, IAM simulations about
# 10/s): 8 at once stays well below them.
DEFAULT_WORKERS = 8
WORKERS = DEFAULT_WORKERS


@dataclass
class Outcome(Generic[T]):
    """What one read gave: its value, or the exception it raised."""

    name: str
    value: T | None = None
    error: BaseException | None = None

    @property
    def kind(self) -> str | None:
        """``None`` when the read succeeded; else what the failure means
        (``aws.errors.read_outcome``: ``missing``, ``retry`` or ``failed``)."""
        return None if self.error is None else read_outcome(self.error)  # type: ignore[arg-type]

    def get(self) -> T:
        """The value, or the read's own exception raised again."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Pending(Generic[T]):
    """A started read; :meth:`result` waits for it (or, when no worker has begun it
    yet, runs it in the waiting thread: a read waiting for the reads it started never
    waits for a place in the pool, so nested reads cannot deadlock it)."""

    def __init__(self, name: str, future: Future | None = None, outcome: Outcome[T] | None = None,
                 task: Callable[[], Outcome[T]] | None = None):
        self.name = name
        self._future = future
        self._outcome = outcome
        self._task = task
        self._lock = threading.Lock()  # one thread takes the read over (or waits for it)

    def outcome(self) -> Outcome[T]:
        """Wait for the read; its value or exception."""
        with self._lock:
            if self._outcome is None:
                assert self._future is not None and self._task is not None
                self._outcome = self._task() if self._future.cancel() else self._future.result()
            return self._outcome

    def result(self) -> T:
        """Wait for the read; its value, or raise what it raised (as a sequential call would)."""
        return self.outcome().get()


def _run(name: str, read: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(name, value=read())
    except Exception as error:  # kept, raised again where the result is taken
        return Outcome(name, error=error)


class ParallelReads:
    """Runs named reads on a bounded pool of its own (made on first use; closed by
    :meth:`close`). ``workers`` defaults to the module's ``WORKERS`` at the time."""

    def __init__(self, workers: int | None = None, name: str = "preflight"):
        self._workers = workers
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.started = 0  # reads started (for tests and the benchmark)

    @property
    def workers(self) -> int:
        return self._workers if self._workers is not None else WORKERS

    def start(self, name: str, read: Callable[[], T]) -> Pending[T]:
        """Start ``read`` (a read-only AWS call); take its result with ``.result()``."""
        with self._lock:
            self.started += 1
        if self.workers <= 1:
            return Pending(name, outcome=_run(name, read))
        context = contextvars.copy_context()
        run_in = carry_preflight_deadline(read)

        def task() -> Outcome[T]:
            return context.copy().run(_run, name, run_in)

        try:
            future = self._executor().submit(task)
        except RuntimeError:
            # The interpreter is shutting down (no thread pool takes new work then) or
            # the pool was closed: the read is done here, in sequence, not lost.
            return Pending(name, outcome=task())
        return Pending(name, future=future, task=task)

    def run(self, reads: dict[str, Callable[[], Any]]) -> dict[str, Outcome[Any]]:
        """Start every read of ``reads`` at once; wait for all; each one's outcome by name."""
        pending = {name: self.start(name, read) for name, read in reads.items()}
        return {name: p.outcome() for name, p in pending.items()}

    def each(self, reads: Iterable[Callable[[], T]], name: str = "read") -> list[T]:
        """Start every read at once; their values in order, or the first failure in
        order raised (as the same reads made one after the other would have raised)."""
        pending = [self.start(f"{name}-{i}", read) for i, read in enumerate(reads)]
        return [p.result() for p in pending]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                prefix = f"{threading.current_thread().name}-{self._name}"
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=prefix)
            return self._pool

    def close(self) -> None:
        """Let the pool's threads end (reads not yet begun are dropped: nobody takes them)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "ParallelReads":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


SEQUENTIAL = ParallelReads(workers=1, name="sequential")
"""For callers without a preflight's pool: every read inline, one after the other."""
