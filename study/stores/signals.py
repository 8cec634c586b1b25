"""Ctrl-C and SIGTERM on the driver: `Interrupted`, raised in the main thread, never in
the middle of a store write.

`interruptible` turns SIGINT and SIGTERM into `Interrupted` (Ray Tune's own SIGINT
handler is switched off: it would end the tuning loop quietly and let the study go on to
its next stage). A signal that lands in a store write (`signals_held`, `store_write`:
every MLflow write of study.tracking.client and study.tracking.trial_logger) raises as that write ends,
so no SQLite transaction is left open half-way. study.stages.lease and study.stages.protocol close
what the stop left open.

A leaf module (no imports from the study package), so the store's own modules can hold
their writes without importing the driver.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """The driver got SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class _Hold:
    """Store writes of the main thread in progress (signals_held), and the signal that
    arrived during one."""

    depth = 0
    pending: int | None = None


_HOLD = _Hold()


@contextlib.contextmanager
def interruptible():
    """SIGINT and SIGTERM raise Interrupted once (at the end of a store write in progress:
    signals_held); later ones wait for the cleanup."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            if _HOLD.depth:
                _HOLD.pending = signum
                return
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _installed.append(handler)
    try:
        yield
    except KeyboardInterrupt as error:
        # A signal that lands inside Ray's C++ calls (ray.wait) comes out as Ray's own
        # KeyboardInterrupt, not the handler's Interrupted: it is the same stop.
        if received and not isinstance(error, Interrupted):
            raise Interrupted(received[0]) from error
        raise
    finally:
        _installed.remove(handler)
        _HOLD.pending = None
        for number, old in previous.items():
            signal.signal(number, old)


@contextlib.contextmanager
def signals_held():
    """A store write of the main thread that Interrupted must not cut in two: raised in
    the middle of an MLflow write, it leaves that write's SQLite transaction open (its
    connection is kept alive by the exception's traceback), and every write of the
    cleanup then waits for the lock and fails. A signal that arrives inside the block
    raises when the block ends. Other threads get no signals: a no-op there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _HOLD.depth += 1
    try:
        yield
    finally:
        _HOLD.depth -= 1
        if _HOLD.depth == 0 and _HOLD.pending is not None:
            signum, _HOLD.pending = _HOLD.pending, None
            raise Interrupted(signum)  # an error of the block stays its __context__


_installed: list = []  # the handler of the active `interruptible`, if any


def reinstall_handlers() -> None:
    """Put the active `interruptible` handler back (after ray.init replaced SIGTERM's)."""
    for handler in _installed[-1:]:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, handler)


def store_write(function):
    """`function`'s store writes are not cut in two by a Ctrl-C or SIGTERM (the signal
    raises when it returns: signals_held)."""

    @functools.wraps(function)
    def held(*args, **kwargs):
        with signals_held():
            return function(*args, **kwargs)

    return held
