"""Where a study writes, and what Ray is pointed at, as a hostile user sets them: every
place a study writes (its SQLite files, its folders, `best-freeze --plot`) a folder where a
file belongs or the other way round, a FIFO, garbage, in memory, unwritable (immutable,
/proc, /sys), on a full disk; RAY_ADDRESS garbage or naming nothing that listens, a
STUDY_RAY_TMPDIR too long for Ray's sockets. Each ends within 15 s with one line naming the
place or the value and the problem, exit 2 (3 for a full disk), no traceback, nothing
written, no study run left RUNNING and no process left behind.

Real places throughout: `chattr +i` for an immutable file or folder (skipped where the
file system has no such flag), /proc and /sys for folders nobody may write in, a small
tmpfs filled up for a full disk (skipped where mounting is not allowed), /dev/full for a
write that fails on a full disk after the checks passed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.test_hardening_config import files_under

SMOKE = {"name": "places", "target": {"sizes": [1], "seeds": 1}}
REFUSED_WITHIN_S = 15  # the issue's bound on every refusal


# --- what every case checks ------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under `folder` with its size and modification time (a folder: None)."""
    found = {}
    for path in folder.rglob("*"):
        info = path.lstat()
        found[str(path.relative_to(folder))] = (
            None if path.is_dir() else (info.st_size, info.st_mtime_ns)
        )
    return found


def running_runs(folder: Path) -> int:
    """Study runs left RUNNING in the MLflow store `folder/mlflow.db`, read without writing
    (0 when there is no such store, or it is not a SQLite database)."""
    path = folder / "mlflow.db"
    if not path.is_file() or path.read_bytes()[:16] != b"SQLite format 3\0":
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "runs" not in tables:
            return 0
        return db.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]


def processes_naming(text: str) -> list[str]:
    """Command lines of live processes (this one aside) that name `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found += [line] if text in line else []
    return found


def assert_refused(done, seconds: float, expected: list[str], code: int = 2, count=1) -> None:
    """Exit `code`, one line on stderr (`count` for `study validate`, which lists every
    problem) holding every text of `expected` (the first), no traceback, within 15 s."""
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == count, done.stderr
    for text in expected:
        assert text.lower() in lines[0].lower(), (text, lines[0])
    assert seconds < REFUSED_WITHIN_S, f"refused after {seconds:.1f} s"


def refuse(cli_in_process, args: list[str], env: dict[str, str] | None = None):
    started = time.monotonic()
    done = cli_in_process(args, env=env)
    return done, time.monotonic() - started


def assert_nothing_left(workdir: Path, before: dict) -> None:
    assert snapshot(workdir) == before  # nothing written, nothing changed
    assert running_runs(workdir) == 0
    assert not processes_naming(str(workdir))


# --- real unwritable places and a real full disk -----------------------------------------------


@pytest.fixture
def undo():
    """Callables run at teardown, last first (chattr -i, umount)."""
    steps: list = []
    yield steps
    for step in reversed(steps):
        step()


def immutable(path: Path, undo: list) -> None:
    """`chattr +i path` (root cannot write it either), or the test skipped."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:  # not root, or a file system without the flag (tmpfs, overlay)
        pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
    undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))


def full_disk(folder: Path, undo: list) -> Path:
    """A small tmpfs mounted on `folder` and filled to the last byte, or the test skipped."""
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    undo.append(lambda: subprocess.run(["umount", "-l", str(folder)], check=True))
    (folder / "stores").mkdir()
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    return folder


# --- where a study writes ------------------------------------------------------------------


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 4)


# case -> (what to do in the working folder: returns (stores, env); texts the one line must
# hold; the exit code)
PLACES = {
    "mlflow.db is a folder": (
        lambda w, u: ((w / "mlflow.db").mkdir(), ({}, {}))[1],
        ["stores.mlflow mlflow.db", "a folder is there, where a SQLite file is expected"],
        2,
    ),
    "optuna.db is a folder": (
        lambda w, u: ((w / "optuna.db").mkdir(), ({}, {}))[1],
        ["stores.optuna optuna.db", "a folder is there"],
        2,
    ),
    "mlflow.db is garbage": (
        lambda w, u: (garbage(w / "mlflow.db"), ({}, {}))[1],
        ["stores.mlflow mlflow.db", "not a SQLite database", "this is not"],
        2,
    ),
    "optuna db in env is garbage": (
        lambda w, u: (garbage(w / "o.db"), ({}, {"STUDY_OPTUNA_DB": f"sqlite:///{w}/o.db"}))[1],
        ["STUDY_OPTUNA_DB", "o.db", "not a SQLite database"],
        2,
    ),
    "mlflow.db is a FIFO": (
        lambda w, u: (os.mkfifo(w / "mlflow.db"), ({}, {}))[1],
        ["stores.mlflow mlflow.db", "a FIFO is there"],
        2,
    ),
    "mlflow in memory": (
        lambda w, u: ({"mlflow": "sqlite:///:memory:"}, {}),
        ["stores.mlflow 'sqlite:///:memory:'", "in-memory database", "keeps nothing"],
        2,
    ),
    "optuna in memory": (
        lambda w, u: ({"optuna": "sqlite://"}, {}),
        ["stores.optuna 'sqlite://'", "in-memory database"],
        2,
    ),
    "mlflow in memory in env": (
        lambda w, u: ({}, {"STUDY_MLFLOW_DB": "sqlite:///:memory:"}),
        ["STUDY_MLFLOW_DB", "in-memory database"],
        2,
    ),
    "one SQLite file for both": (
        lambda w, u: ({"mlflow": "sqlite:///study.db", "optuna": "sqlite:///study.db"}, {}),
        ["stores.mlflow and stores.optuna are both", "study.db"],
        2,
    ),
    "SQLite file where a store's folder goes": (
        lambda w, u: ({"mlflow": "sqlite:///results", "ray_results": "results"}, {}),
        ["stores.mlflow and stores.ray_results are both", "results"],
        2,
    ),
    "mlartifacts is a file": (
        lambda w, u: ((w / "mlartifacts").write_text("x"), ({}, {}))[1],
        ["stores.artifacts mlartifacts", "a file is there, where a folder is expected"],
        2,
    ),
    "artifacts file:// URI is a file": (
        lambda w, u: ((w / "art").write_text("x"), ({"artifacts": f"file://{w}/art"}, {}))[1],
        ["stores.artifacts file://", "a file is there, where a folder is expected"],
        2,
    ),
    "ray_results is a file": (
        lambda w, u: ((w / "ray_results").write_text("x"), ({}, {}))[1],
        ["stores.ray_results ray_results", "a file is there, where a folder is expected"],
        2,
    ),
    "pretrained is a file": (
        lambda w, u: ((w / "pretrained").write_text("x"), ({}, {}))[1],
        ["stores.checkpoints pretrained", "a file is there"],
        2,
    ),
    "feature_cache is a file": (
        lambda w, u: ((w / "feature_cache").write_text("x"), ({}, {}))[1],
        ["stores.features feature_cache", "a file is there"],
        2,
    ),
    "artifacts under a file": (
        lambda w, u: ((w / "notes.txt").write_text("x"), ({"artifacts": "notes.txt/a"}, {}))[1],
        ["stores.artifacts notes.txt/a", "cannot be created", "notes.txt is a file"],
        2,
    ),
    "ray_results a link to nowhere": (
        lambda w, u: ((w / "ray_results").symlink_to("/no/such/place"), ({}, {}))[1],
        ["stores.ray_results ray_results", "a link to /no/such/place, which does not exist"],
        2,
    ),
    "ray_results in /proc": (
        lambda w, u: ({"ray_results": "/proc/study-results"}, {}),
        ["stores.ray_results /proc/study-results", "cannot write in /proc"],
        2,
    ),
    "checkpoints in /sys": (
        lambda w, u: ({"checkpoints": "/sys/study-pretrained"}, {}),
        ["stores.checkpoints /sys/study-pretrained", "cannot write in /sys"],
        2,
    ),
    "mlflow.db in /proc": (
        lambda w, u: ({"mlflow": "sqlite:////proc/mlflow.db"}, {}),
        ["stores.mlflow /proc/mlflow.db", "cannot write in /proc"],
        2,
    ),
    "mlflow.db immutable": (
        lambda w, u: ((w / "mlflow.db").touch(), immutable(w / "mlflow.db", u), ({}, {}))[2],
        ["stores.mlflow mlflow.db", "cannot be written", "operation not permitted"],
        2,
    ),
    "feature_cache immutable": (
        lambda w, u: (
            (w / "feature_cache").mkdir(),
            immutable(w / "feature_cache", u),
            ({}, {}),
        )[2],
        ["stores.features feature_cache", "cannot write in", "operation not permitted"],
        2,
    ),
    "working folder immutable": (
        lambda w, u: (immutable(w, u), ({}, {}))[1],
        ["stores.mlflow mlflow.db", "cannot write in", "operation not permitted"],
        2,
    ),
    "ray_results on a full disk": (
        lambda w, u: ({"ray_results": f"{full_disk(w / 'full', u)}/stores/ray_results"}, {}),
        ["stores.ray_results", "full/stores/ray_results", "no space left on device"],
        3,
    ),
    "mlflow.db on a full disk": (
        lambda w, u: ({"mlflow": f"sqlite:///{full_disk(w / 'full', u)}/stores/mlflow.db"}, {}),
        ["stores.mlflow", "full/stores/mlflow.db", "no space left on device"],
        3,
    ),
}


# `study validate` lists every problem: every place in the immutable folder is one.
VALIDATE_LINES = {"working folder immutable": 6}
# Cases where an earlier study's MLflow store is there: it must come out untouched, with no
# study run left RUNNING (the issue: a study run RUNNING after `mlartifacts` was a file).
WITH_STORE = {
    "a store there, mlartifacts a file": (
        lambda w, u: ((w / "mlartifacts").write_text("x"), ({}, {}))[1],
        ["stores.artifacts mlartifacts", "a file is there, where a folder is expected"],
        2,
    ),
    "a store there, ray_results a file": (
        lambda w, u: ((w / "ray_results").write_text("x"), ({}, {}))[1],
        ["stores.ray_results ray_results", "a file is there, where a folder is expected"],
        2,
    ),
    "a store there, optuna.db garbage": (
        lambda w, u: (garbage(w / "optuna.db"), ({}, {}))[1],
        ["stores.optuna optuna.db", "not a SQLite database"],
        2,
    ),
}
PLACES |= WITH_STORE


@pytest.fixture(scope="module")
def earlier_store(tmp_path_factory) -> Path:
    """A real MLflow store with an earlier study's experiment, made once (copied per case)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("earlier") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").create_experiment("earlier-study")
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(PLACES))
def test_a_place_the_study_cannot_write_is_one_line_before_anything_is_written(
    workdir, cli_in_process, undo, request, case, command
):
    arrange, expected, code = PLACES[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump(SMOKE))
    if case in WITH_STORE:
        shutil.copy(request.getfixturevalue("earlier_store"), workdir / "mlflow.db")
    stores, env = arrange(workdir, undo)
    if stores:
        (workdir / "study.yaml").write_text(yaml.safe_dump({**SMOKE, "stores": stores}))
    before = snapshot(workdir)
    done, seconds = refuse(cli_in_process, [command, "--config", "study.yaml"], env)
    lines = VALIDATE_LINES.get(case, 1) if command == "validate" else 1
    assert_refused(done, seconds, expected, code, lines)
    assert_nothing_left(workdir, before)


def test_the_places_of_a_good_config_pass_and_are_not_created(workdir, cli_in_process):
    (workdir / "study.yaml").write_text(yaml.safe_dump(SMOKE))
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert done.returncode == 0, done.stderr
    assert files_under(workdir) == {"study.yaml"}  # the probes leave nothing


# --- best-freeze --plot FILE -------------------------------------------------------------------

PLOTS = {
    "a folder": (
        lambda w, u: ((w / "answer.png").mkdir(), "answer.png")[1],
        ["--plot answer.png", "a folder is there, where a file is expected"],
        2,
    ),
    "a FIFO": (
        lambda w, u: (os.mkfifo(w / "answer.png"), "answer.png")[1],
        ["--plot answer.png", "a FIFO is there"],
        2,
    ),
    "under a file": (
        lambda w, u: ((w / "notes.txt").write_text("x"), "notes.txt/answer.png")[1],
        ["--plot notes.txt/answer.png", "notes.txt is a file, not a folder"],
        2,
    ),
    "in /proc": (lambda w, u: "/proc/answer.png", ["--plot /proc/answer.png", "cannot write"], 2),
    "in /sys": (lambda w, u: "/sys/answer.png", ["--plot /sys/answer.png", "cannot write"], 2),
    "an immutable folder": (
        lambda w, u: ((w / "pics").mkdir(), immutable(w / "pics", u), "pics/answer.png")[2],
        ["--plot pics/answer.png", "cannot write in", "operation not permitted"],
        2,
    ),
    "an immutable file": (
        lambda w, u: ((w / "answer.png").touch(), immutable(w / "answer.png", u), "answer.png")[2],
        ["--plot answer.png", "cannot be written", "operation not permitted"],
        2,
    ),
    "a full disk": (
        lambda w, u: f"{full_disk(w / 'full', u)}/answer.png",
        ["--plot", "full/answer.png", "no space left on device"],
        3,
    ),
}


@pytest.mark.parametrize("case", sorted(PLOTS))
def test_a_plot_file_that_cannot_be_written_is_refused_before_the_store_is_read(
    workdir, cli_in_process, undo, case
):
    arrange, expected, code = PLOTS[case]
    plot = arrange(workdir, undo)
    before = snapshot(workdir)
    done, seconds = refuse(cli_in_process, ["best-freeze", "--plot", plot])
    assert_refused(done, seconds, expected, code)
    assert_nothing_left(workdir, before)


def test_a_plot_the_disk_cannot_take_is_one_line_exit_3(workdir, cli_in_process, monkeypatch):
    """The checks pass (/dev/full is a device, its folder has room), then the write fails
    as on a disk that filled since: one line, exit 3, the link to /dev/full left alone."""
    from study.answer import query
    from study.answer.query import best_per_size
    from study.tracking import client as tracking
    from tests.test_answer_model import confirm_row

    rows = [
        confirm_row(s, 0, seed, 0.5 + 0.1 * seed)
        for s in ("scratch", "finetune")
        for seed in (0, 1)
    ]
    parent = type("Run", (), {"info": type("Info", (), {"run_id": "r1"})()})()
    monkeypatch.setattr(query, "latest_study_run", lambda client, experiment: parent)
    monkeypatch.setattr(query, "study_answer", lambda client, run: best_per_size(rows))
    monkeypatch.setattr(tracking, "client_for", lambda uri: None)
    (workdir / "mlflow.db").touch()  # a store there (empty: nothing reads it here)
    (workdir / "answer.png").symlink_to("/dev/full")
    before = snapshot(workdir)
    done, seconds = refuse(cli_in_process, ["best-freeze", "--plot", "answer.png"])
    assert_refused(done, seconds, ["--plot answer.png", "no space left on device"], 3)
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///:memory:", ["--tracking-uri", "in-memory database"]),
        ("sqlite:///mlflow.db", ["--tracking-uri mlflow.db", "not a SQLite database"]),
    ],
)
def test_best_freeze_refuses_a_store_that_keeps_nothing_or_is_garbage(
    workdir, cli_in_process, uri, expected
):
    garbage(workdir / "mlflow.db")
    before = snapshot(workdir)
    done, seconds = refuse(cli_in_process, ["best-freeze", "--tracking-uri", uri])
    assert_refused(done, seconds, expected)
    assert snapshot(workdir) == before


# --- what Ray is pointed at ----------------------------------------------------------------------


@contextlib.contextmanager
def listener(answer: bytes | None):
    """A port on 127.0.0.1 that accepts and then says `answer` and hangs up, or (None)
    never says anything: a server that is not Ray's, or a hung one."""
    server = socket.create_server(("127.0.0.1", 0), backlog=8)
    held = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                if answer is not None:
                    conn.recv(1024)  # the greeting read: closing then resets nothing
                    conn.sendall(answer)
                    conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in held:
            conn.close()


def long_tmpdir(workdir: Path) -> Path:
    folder = workdir / ("t" * 60)
    folder.mkdir()
    return folder


# case -> (env, given the working folder, the ports of `ports` and `undo`; texts the one
# line must hold)
RAY = {
    "garbage": (
        lambda w, p, u: {"RAY_ADDRESS": "garbage"},
        ["RAY_ADDRESS 'garbage'", "not an address Ray can join", "allowed: host:port"],
    ),
    "nothing listening": (
        lambda w, p, u: {"RAY_ADDRESS": "127.0.0.1:1"},
        ["RAY_ADDRESS '127.0.0.1:1'", "nothing listens at", ":1 (connection refused)"],
    ),
    "no port": (lambda w, p, u: {"RAY_ADDRESS": "10.0.0.5"}, ["'10.0.0.5'", "allowed:"]),
    "no host": (lambda w, p, u: {"RAY_ADDRESS": ":6379"}, ["':6379'", "allowed:"]),
    "port not a number": (
        lambda w, p, u: {"RAY_ADDRESS": "head:http"},
        ["'head:http'", "allowed:"],
    ),
    "port out of range": (
        lambda w, p, u: {"RAY_ADDRESS": "127.0.0.1:70000"},
        ["'127.0.0.1:70000'", "port 70000 is out of range"],
    ),
    "a dashboard's address": (
        lambda w, p, u: {"RAY_ADDRESS": "http://127.0.0.1:8265"},
        ["'http://127.0.0.1:8265'", "dashboard", "host:6379"],
    ),
    "an unknown host": (
        lambda w, p, u: {"RAY_ADDRESS": "no-such-host.invalid:6379"},
        ["'no-such-host.invalid:6379'", "nothing listens at no-such-host.invalid:6379"],
    ),
    "ray client, nothing listening": (
        lambda w, p, u: {"RAY_ADDRESS": "ray://127.0.0.1:1"},
        ["'ray://127.0.0.1:1'", "nothing listens at 127.0.0.1:1"],
    ),
    "a server that is not Ray": (
        lambda w, p, u: {"RAY_ADDRESS": f"ray://127.0.0.1:{p['http']}"},
        ["ray://127.0.0.1:", "is not a Ray cluster", "gRPC"],
    ),
    "a server that never answers": (
        lambda w, p, u: {"RAY_ADDRESS": f"ray://127.0.0.1:{p['silent']}"},
        ["ray://127.0.0.1:", "nothing answers", "within 3 s"],
    ),
    "STUDY_RAY_TMPDIR too long": (
        lambda w, p, u: {"STUDY_RAY_TMPDIR": str(long_tmpdir(w))},
        ["STUDY_RAY_TMPDIR", "ttt", "too long for Ray", "over the 107"],
    ),
    "RAY_ADDRESS local, STUDY_RAY_TMPDIR too long": (
        lambda w, p, u: {"RAY_ADDRESS": "local", "STUDY_RAY_TMPDIR": str(long_tmpdir(w))},
        ["STUDY_RAY_TMPDIR", "too long for Ray"],
    ),
    "STUDY_RAY_TMPDIR missing": (
        lambda w, p, u: {"STUDY_RAY_TMPDIR": str(w / "no" / "such")},
        ["STUDY_RAY_TMPDIR", "no/such", "no such folder"],
    ),
    "STUDY_RAY_TMPDIR a file": (
        lambda w, p, u: ((w / "tmp").write_text("x"), {"STUDY_RAY_TMPDIR": str(w / "tmp")})[1],
        ["STUDY_RAY_TMPDIR", "a file is there, where a folder is expected"],
    ),
    "STUDY_RAY_TMPDIR on a full disk": (
        lambda w, p, u: {"STUDY_RAY_TMPDIR": str(full_disk(w / "full", u) / "stores")},
        ["STUDY_RAY_TMPDIR", "full/stores", "no space left on device"],
    ),
    "STUDY_RAY_TMPDIR /proc": (
        lambda w, p, u: {"STUDY_RAY_TMPDIR": "/proc"},
        ["STUDY_RAY_TMPDIR /proc", "cannot write in /proc"],
    ),
}


@pytest.fixture
def ports():
    with listener(b"HTTP/1.1 400 Bad Request\r\n\r\n") as http, listener(None) as silent:
        yield {"http": http, "silent": silent}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(RAY))
def test_what_ray_is_pointed_at_is_one_line_before_ray_starts(
    workdir, cli_in_process, ports, undo, case, command
):
    environment, expected = RAY[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump(SMOKE))
    env = environment(workdir, ports, undo)
    before = snapshot(workdir)
    done, seconds = refuse(cli_in_process, [command, "--config", "study.yaml"], env)
    assert_refused(done, seconds, expected, 3 if "full disk" in case else 2)
    assert_nothing_left(workdir, before)
    import ray

    assert not ray.is_initialized()


def test_auto_needs_a_cluster_here_that_listens(monkeypatch):
    """RAY_ADDRESS=auto joins what `ray start` left here (or any GCS running here): none,
    or an address file of a cluster that is gone, is one line, not Ray's ConnectionError."""
    import ray._private.services as services
    import ray._private.utils as utils

    from study.tuning.ray_env import address_problem

    monkeypatch.setattr(utils, "read_ray_address", lambda temp_dir=None: None)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: set())
    assert "no Ray cluster runs on this machine" in address_problem("auto")
    monkeypatch.setattr(utils, "read_ray_address", lambda temp_dir=None: "127.0.0.1:1")
    assert "(127.0.0.1:1): nothing listens at" in address_problem("auto")


def test_the_forms_ray_takes_are_kept(monkeypatch):
    """`local` (a runtime of the study's own) passes with a temp dir that fits, and a
    Ray head's GCS answers the gRPC probe (tested against a real one in
    test_a_real_head_passes_the_probe)."""
    from study.tuning import ray_env

    monkeypatch.delenv("STUDY_RAY_TMPDIR", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert ray_env.ray_problems() == []
    monkeypatch.delenv("RAY_ADDRESS")
    assert ray_env.ray_problems() == []
    assert ray_env.HOST_PORT.match("[::1]:6379") and ray_env.HOST_PORT.match("head-0.local:6379")


@pytest.mark.ray
def test_a_real_head_passes_the_probe_and_the_socket_path_is_ray_s():
    """Against a running local Ray: its GCS address passes (host:port and ray:// forms
    probe the same gRPC server), and the socket path computed for a temp dir is the one
    Ray made there (same length)."""
    import ray

    from study.tuning.ray_env import LOCAL_PREFIX, address_problem, socket_path, tmpdir_problem
    from study.tuning.runtime import local_ray

    parent = Path(tempfile.mkdtemp(prefix="rh-", dir="/tmp"))  # short: Ray's sockets fit
    try:
        assert tmpdir_problem(str(parent)) is None
        with local_ray(num_cpus=1, parent=str(parent), prefix=LOCAL_PREFIX):
            gcs = ray.get_runtime_context().gcs_address
            assert address_problem(gcs) is None
            assert address_problem(f"ray://{gcs}") is None
            [made] = [p for p in parent.rglob("plasma_store") if p.is_socket()]
            assert len(str(made)) == len(socket_path(str(parent)))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("case", ["nothing listening", "STUDY_RAY_TMPDIR too long"])
def test_the_issue_s_ray_cases_as_a_user_runs_them(workdir, case):
    """In a fresh interpreter, the way a user runs `study run`: the whole command is over
    within 15 s, without Ray's connection warnings and without a process left behind."""
    environment, expected = RAY[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump(SMOKE))
    env = environment(workdir, {}, [])
    before = snapshot(workdir)
    started = time.monotonic()
    done = run_cli(["run", "--config", "study.yaml"], workdir, timeout=120, env=env)
    assert_refused(done, time.monotonic() - started, expected)
    assert "Failed to connect" not in done.stdout + done.stderr
    assert_nothing_left(workdir, before)
