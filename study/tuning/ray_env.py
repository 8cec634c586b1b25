"""What the environment points Ray at, checked before Ray is started or joined.

`RAY_ADDRESS` must be a form Ray takes (ADDRESS_FORMS), and at a host:port something must
answer as Ray's servers do (gRPC) within seconds: left to itself, Ray retries an address
where nothing listens for many minutes, printing its connection warnings, and traces back
on garbage. The local runtime's temp dir goes under `STUDY_RAY_TMPDIR` (else /tmp), which
must be a writable folder short enough for the socket paths Ray makes under it. Each
problem is one line; nothing is started or written (study.tuning.runtime raises it).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from study.stores.places import folder_problem, raise_first

# Parent folder of the local runtime's temp dir (default /tmp): keep it short, Ray's socket
# names must fit in 107 bytes.
ENV_RAY_TMP = "STUDY_RAY_TMPDIR"
LOCAL_PREFIX = "ray-study-"  # local_ray's temp dir: this and mkdtemp's 8 characters
ADDRESS_FORMS = (
    "host:port (the head's GCS, e.g. 10.0.0.5:6379), ray://host:port (Ray Client), "
    "auto (the cluster `ray start` made here) or local (a runtime of the study's own)"
)
HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d+)$")
CONNECT_TIMEOUT_S = 3  # per step (connect, then the answer): a bad address fails within 15 s
# A gRPC server (Ray's GCS, the Ray Client server) answers HTTP/2's client preface with a
# SETTINGS frame (type 4); a port that is something else does not.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SOCKET_PATH_MAX = 107  # bytes of a Unix socket's path (108 with its NUL; Ray checks 107)


def started_cluster_address() -> str | None:
    """The address of a cluster `ray start` made on this machine and still running, or None."""
    from ray._private.services import find_gcs_addresses
    from ray._private.utils import read_ray_address

    address = read_ray_address()  # written by `ray start`, removed by `ray stop`
    # A file left by a cluster that died without `ray stop` names nothing that runs.
    if address and address in find_gcs_addresses():
        return address
    return None


def ray_tmpdir() -> str:
    """The parent folder of the local runtime's temp dir: STUDY_RAY_TMPDIR, else /tmp."""
    return os.environ.get(ENV_RAY_TMP) or "/tmp"


def ray_problems() -> list[str]:
    """What is wrong with where the environment points Ray, one line (RAY_ADDRESS; for a
    local runtime, STUDY_RAY_TMPDIR); [] when nothing is. Nothing is started."""
    address = os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":
        problem = address_problem(address)
    else:  # a local runtime, unless a `ray start` cluster is joined (Ray imported only then)
        problem = tmpdir_problem(ray_tmpdir())
        if problem and not address and started_cluster_address() is not None:
            problem = None
    return [problem] if problem else []


def check_ray_environment() -> None:
    """Raise the first of ray_problems: ConfigError, or NoSpace for a full disk."""
    raise_first(ray_problems())


def address_problem(address: str) -> str | None:
    """Why Ray cannot join `address` (RAY_ADDRESS): not a form Ray takes, or nothing there
    that answers as Ray does, within seconds; None when it can try."""
    where = f"RAY_ADDRESS {address!r}"
    if address == "auto":
        return _auto_problem(where)
    scheme, client, rest = address.partition("://")
    found = HOST_PORT.match(rest if client else address)
    if (client and scheme != "ray") or found is None:
        hint = ""
        if scheme in ("http", "https"):
            hint = " (that is a dashboard, for `ray job submit`; the head's GCS is host:6379)"
        return f"{where} is not an address Ray can join{hint}; allowed: {ADDRESS_FORMS}"
    host, port = found["v6"] or found["host"], int(found["port"])
    if not 0 < port < 65536:
        return f"{where}: port {port} is out of range (1..65535)"
    # Probed where the user points: a loopback address stays loopback (Ray itself may
    # join it at this machine's address; the probe sends nothing beyond 127.0.0.0/8).
    return _answer_problem(where, host, port)


def _auto_problem(where: str) -> str | None:
    from ray._private.services import find_gcs_addresses
    from ray._private.utils import read_ray_address

    found = read_ray_address() or next(iter(find_gcs_addresses()), None)  # Ray's order
    if found is None:
        return (
            f"{where}: no Ray cluster runs on this machine to join (start one with "
            f"`ray start --head`, or unset RAY_ADDRESS for a local runtime)"
        )
    parts = HOST_PORT.match(found)
    if parts is None:  # an address file somebody else wrote
        return f"{where}: Ray would join {found!r}, which is not host:port"
    host = parts["v6"] or parts["host"]
    return _answer_problem(f"{where} ({found})", host, int(parts["port"]))


def _answer_problem(where: str, host: str, port: int) -> str | None:
    """Nothing listening at host:port, or something that does not speak gRPC as Ray's
    servers do (not checked under RAY_USE_TLS: a TLS server waits for a TLS hello)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        conn = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as error:  # refused, no route, an unknown host, timed out
        reason = error.strerror or str(error) or type(error).__name__
        return (
            f"{where}: nothing listens at {shown} ({reason}); start the cluster "
            f"(`ray start --head`) or unset RAY_ADDRESS for a local runtime"
        )
    with conn:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return None
        try:
            conn.sendall(HTTP2_PREFACE)
            answer = _first_bytes(conn, 4)
        except TimeoutError:
            return f"{where}: nothing answers at {shown} within {CONNECT_TIMEOUT_S} s"
        except OSError:  # it hung up on the greeting
            answer = b""
    if len(answer) < 4 or answer[3] != 4:
        return f"{where}: what listens at {shown} is not a Ray cluster (it does not speak gRPC)"
    return None


def _first_bytes(conn: socket.socket, count: int) -> bytes:
    """Up to `count` bytes of the answer on `conn`, fewer when the other side closes."""
    answer = b""
    while len(answer) < count and (more := conn.recv(count - len(answer))):
        answer += more
    return answer


def tmpdir_problem(parent: str) -> str | None:
    """Why the local runtime cannot have its temp dir in `parent`: not a writable folder,
    or too long for the socket paths Ray makes under it (see socket_path)."""
    where = f"{ENV_RAY_TMP} {parent}" if os.environ.get(ENV_RAY_TMP) else f"temp folder {parent}"
    problem = folder_problem(where, Path(parent), must_exist=True)
    if problem:
        return problem
    longest = len(socket_path(parent).encode())
    if longest > SOCKET_PATH_MAX:
        room = SOCKET_PATH_MAX - (longest - len(os.path.abspath(parent).encode()))
        return (
            f"{where}: too long for Ray: its socket paths there would be {longest} bytes, "
            f"over the {SOCKET_PATH_MAX} a Unix socket may have; give a folder of at most "
            f"{max(room, 1)} bytes (e.g. /tmp)"
        )
    return None


def socket_path(parent: str) -> str:
    """The longest socket path Ray (2.x) makes for local_ray's runtime under `parent`:
    <temp dir>/session_<date>_<time>_<microseconds>_<pid>/sockets/plasma_store."""
    temp_dir = os.path.join(os.path.abspath(parent), LOCAL_PREFIX + "x" * 8)
    session = f"session_2000-01-01_00-00-00_000000_{os.getpid()}"  # Ray's: the driver's pid
    return os.path.join(temp_dir, session, "sockets", "plasma_store")
