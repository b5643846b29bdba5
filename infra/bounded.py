"""Runs one computation in a child process under a hard time budget and memory cap.

The child is forked from a fork server (a clean, single-threaded process started once
with numpy and the persistence engines imported), so it starts in milliseconds and
shares no locks or threads with the caller. The parent samples the resident memory of
the child and its descendants every 20 ms and kills it when it passes the cap or when
the budget is spent. This is process supervision, so it lives here and not in domain/:
`domain.topology.persistence.compute_persistence` takes `run_bounded` as its runner.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.02

# Imported once by the fork server so each child starts warm; missing modules are skipped.
PRELOAD = [
    "__main__",
    "numpy",
    "scipy.sparse.csgraph",
    "domain.topology.persistence",
    "ripser",
    "gph",
]


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        reply: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        reply = ("memory", "MemoryError in the computation")
    except Exception as exc:  # reported to the parent, which degrades and labels
        reply = ("error", f"{type(exc).__name__}: {exc}")
    try:
        # The child's own high-water mark: a child that finishes between two samples
        # of the parent would otherwise report no memory at all.
        conn.send((*reply, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
    finally:
        conn.close()


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (0 once it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            total += child.memory_info().rss
        return int(total)
    except psutil.Error:
        return 0


def child_context() -> Any:
    """The fork-server context, preloaded so children start fast."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _noop() -> None:
    return None


def warm_up() -> float:
    """Starts the fork server (its imports included) with one empty child; returns seconds.

    The first attempt otherwise pays that start inside its budget: seconds on a busy machine.
    """
    ctx = child_context()
    start = time.perf_counter()
    proc = ctx.Process(target=_noop)
    proc.start()
    proc.join()
    return time.perf_counter() - start


def run_bounded(
    fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, memory_bytes: int
) -> tuple[str, Any, float, int]:
    """`fn(*args)` in a child process: (status, payload, seconds, peak RSS bytes).

    Status is "ok" (payload: the result), "memory", "timeout" or "error" (payload: why).
    `fn` and `args` must be picklable (a module-level function).
    """
    ctx = child_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    start = time.perf_counter()
    proc.start()
    child.close()
    peak = 0
    status: str
    payload: Any = None
    try:
        while True:
            # Sampled before waiting, so even a child that finishes within one poll
            # interval is measured and held to the cap.
            rss = tree_rss(proc.pid) if proc.pid else 0
            peak = max(peak, rss)
            if rss > memory_bytes:
                status, payload = "memory", f"memory cap {memory_bytes / 2**20:.0f} MiB exceeded"
                break
            if parent.poll(POLL_SECONDS):
                try:
                    status, payload, child_peak = parent.recv()
                    peak = max(peak, int(child_peak))
                except EOFError:
                    status, payload = "error", f"child exited with code {proc.exitcode}"
                break
            if time.perf_counter() - start > timeout_s:
                status, payload = "timeout", f"time budget {timeout_s:.1f} s exceeded"
                break
            if not proc.is_alive() and not parent.poll(0):
                code = proc.exitcode
                status = "memory" if code is not None and code < 0 else "error"
                payload = f"child exited with code {code}"
                break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    return status, payload, time.perf_counter() - start, peak
