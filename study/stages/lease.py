"""The running driver: stopped cleanly by Ctrl-C or SIGTERM, and the only one on its study.

Interrupted (study.stores.signals): SIGINT and SIGTERM raise `Interrupted` in the driver's main
thread, never inside a store write. The exception unwinds Ray (trials stop), then
study.stages.protocol closes what was open: trial runs KILLED, Optuna trials FAIL, the study run
KILLED with `study_state` `interrupted`; `study run --resume` continues it. Exit code
128 + signal.

A full disk (`no_space`): an error that is, or wraps, ENOSPC ends `study run` with one
line (exit 3), the study closed the same way as FAILED, resumable once there is room.

Lease: the study run carries the driver that runs it (`driver`: host:pid) and a heartbeat
tag refreshed every HEARTBEAT_S. A second driver on the same study refuses to start while
that heartbeat is fresh; a driver killed outright (SIGKILL, a lost node) stops beating, so
its lease expires after LEASE_S, at once when its pid is gone on this same host. (Two
drivers started within the same second can both pass the check: the store offers no
atomic compare-and-set through MLflow's client.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading

from study.errors import ConfigError
from study.tracking import client as tracking

HEARTBEAT_S = 15
LEASE_S = 90  # three missed heartbeats and a margin: a stuck store, not a dead driver


NO_SPACE = "No space left on device"


def no_space(error: BaseException) -> str | None:
    """What ran out of space when `error` (or an error it wraps: Ray's TuneError, a
    trial's error text) is a full disk; None for any other error."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return str(error.filename or NO_SPACE)
        if NO_SPACE in str(error):
            return NO_SPACE
        error = error.__cause__ or error.__context__
    return None


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process
    return True


def _lease_is_live(tags: dict, now_ms: int) -> bool:
    host, _, pid = tags.get(tracking.TAG_DRIVER, "").rpartition(":")
    beat = int(tags.get(tracking.TAG_HEARTBEAT, "0") or 0)
    if not host or now_ms - beat > LEASE_S * 1000:
        return False
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return False  # killed on this host: no need to wait for the lease to run out
    return True


def refuse_if_running(client, study: str) -> None:
    """ConfigError naming the driver that runs study `study` now, if one does."""
    ids = tracking.experiment_ids(client, study)
    run = tracking.latest_study_run(client, ids, status="RUNNING") if ids else None
    if run is None or not _lease_is_live(run.data.tags, tracking.now_ms()):
        return
    tags = run.data.tags
    age = (tracking.now_ms() - int(tags[tracking.TAG_HEARTBEAT])) / 1000
    raise ConfigError(
        f"study {study} is being run by driver {tags[tracking.TAG_DRIVER]} (MLflow run "
        f"{run.info.run_id}, heartbeat {age:.0f} s ago); wait for it, or stop it and "
        f"continue with --resume"
    )


@contextlib.contextmanager
def lease(client, run_id: str):
    """Hold the study run's lease while the block runs: a heartbeat every HEARTBEAT_S."""
    stop = threading.Event()

    def beat() -> None:
        tracking.set_lease(client, run_id, holder(), tracking.now_ms())

    beat()

    def loop() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a store hiccup: the next beat retries
                beat()

    thread = threading.Thread(target=loop, name="study-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(Exception):
            tracking.set_lease(client, run_id, holder(), 0)  # released: expired at once
