"""Where a command writes, looked at before anything is written.

A study writes two SQLite files (`stores.mlflow`, `stores.optuna`, when they are SQLite
URLs), four folders (`stores.artifacts`, `stores.ray_results`, `stores.checkpoints`,
`stores.features`), and `best-freeze --plot` one file. Each can be a folder where a file
belongs or the other way round, a FIFO (an open that never returns), a file that is not a
SQLite database, a place nobody may write (read-only, immutable, /proc), or on a full
disk. Left to themselves, MLflow, Optuna and Ray find out after the study run exists, or
hang. Each problem here is one line naming the place; a full disk is a NoSpaceLine (exit
3). Nothing is created: a folder's writability is probed with an unnamed file (O_TMPFILE),
or, where the file system has none, with a file removed at once.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from study.errors import ConfigError

SQLITE_HEADER = b"SQLite format 3\x00"
# Less free than one block on a place's disk: full, nothing can be written. A disk with a
# little room left is not refused: the study may fit, and if it fills up mid-study it ends
# with exit 3 and resumes (tests/test_faults.py).
MIN_FREE_BYTES = 4096
KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)  # O_TMPFILE unsupported here


class NoSpaceLine(str):
    """A problem line that is a full disk (exit 3, not 2); `place` says where."""

    place: str = ""


class NoSpace(OSError, ConfigError):
    """A place on a full disk, found before the first write: `study run` ends as it does
    when the disk fills mid-study (exit 3, study.stages.lease.no_space reads the errno);
    a command without that handling tells it as bad input (its one line, exit 2)."""

    def __init__(self, line: NoSpaceLine):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), line.place or str(line))
        self.line = str(line)

    def __str__(self) -> str:
        return self.line


def kind(path: Path) -> str:
    """'a folder', 'a FIFO', ... or 'a file' for what is at `path` (which exists)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # a link to nowhere, a folder it may not look into
        return "a broken link" if path.is_symlink() else "unreadable"
    return next((name for test, name in KINDS if test(mode)), "a file")


def raise_first(problems: list[str]) -> None:
    """Raise the first of `problems` (one line each): NoSpace for a full disk (exit 3),
    else ConfigError; nothing when there are none."""
    if problems:
        first = problems[0]
        raise NoSpace(first) if isinstance(first, NoSpaceLine) else ConfigError(first)


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def write_probe(folder: Path) -> str | None:
    """Why no file can be created in the existing `folder`, or None when one can."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        try:
            os.close(os.open(folder, tmpfile | os.O_WRONLY, 0o600))
            return None
        except OSError as error:
            if error.errno not in NO_TMPFILE:
                return _reason(error)
    try:
        handle, name = tempfile.mkstemp(prefix=".study-write-probe-", dir=folder)
    except OSError as error:
        return _reason(error)
    os.close(handle)
    os.unlink(name)
    return None


def space_problem(where: str, folder: Path) -> NoSpaceLine | None:
    """A full disk under `folder` (an existing folder), or None."""
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    free = disk.f_bavail * disk.f_frsize
    if disk.f_blocks == 0 or free >= MIN_FREE_BYTES:  # /proc, /sys count no blocks
        return None
    amount = f"{free // 1024} KiB" if free >= 1024 else f"{free} bytes"
    line = NoSpaceLine(f"{where}: no space left on device ({amount} free in {folder})")
    line.place = f"{where}: {amount} free in {folder}"
    return line


def _existing_parent(path: Path) -> Path:
    """The nearest folder above `path` (absolute) that is there (or a file in its way)."""
    return next(parent for parent in path.parents if os.path.lexists(parent))


def folder_problem(where: str, path: Path, must_exist: bool = False) -> str | None:
    """What keeps the command from creating folder `path` (with its parents, unless
    `must_exist`) and writing in it, one line starting with `where` (the place's name and
    the path as given); None when nothing does."""
    path = Path(os.path.abspath(path.expanduser()))
    if path.is_symlink() and not path.exists():
        return f"{where}: a link to {os.readlink(path)}, which does not exist"
    if path.exists():
        if not path.is_dir():
            return f"{where}: {kind(path)} is there, where a folder is expected"
        folder = path
    elif must_exist:
        return f"{where}: no such folder"
    else:
        folder = _existing_parent(path)
        if not folder.is_dir():
            return f"{where}: cannot be created: {folder} is {kind(folder)}, not a folder"
    reason = write_probe(folder)
    if reason:
        return f"{where}: cannot write in {folder} ({reason})"
    return space_problem(where, folder)


def file_problem(where: str, path: Path, journal: bool = False) -> str | None:
    """What keeps the command from creating or overwriting file `path` (a device such as
    /dev/null may be written), one line starting with `where`; None when nothing does.
    `journal`: the folder must take new files even when the file is there (SQLite's
    journal sits next to its database)."""
    path = Path(os.path.abspath(path.expanduser()))
    folder = path.parent
    if os.path.lexists(folder) and not folder.is_dir():
        return f"{where}: {folder} is {kind(folder)}, not a folder"
    if not folder.is_dir():
        return f"{where}: folder {folder} does not exist"
    if path.exists():
        what = kind(path)
        if what in ("a folder", "a FIFO", "a socket"):  # a FIFO: the open would wait
            return f"{where}: {what} is there, where a file is expected"
        try:
            os.close(os.open(path, os.O_WRONLY))  # no O_TRUNC: nothing is changed
        except OSError as error:
            return f"{where}: cannot be written ({_reason(error)})"
        if what != "a file":
            return None  # a device: no disk to fill
    if journal or not path.exists():
        reason = write_probe(folder)
        if reason:
            return f"{where}: cannot write in {folder} ({reason})"
    return space_problem(where, folder)


def sqlite_file_problem(where: str, path: Path) -> str | None:
    """What is at `path` that is not a SQLite database (a folder, a FIFO, another file's
    bytes), read from its header, nothing opened by SQLite; None when it is one, is empty
    (SQLite makes an empty file a database) or is not there."""
    path = path.expanduser()
    if not path.exists():
        return None
    what = kind(path)
    if what != "a file":
        return f"{where}: {what} is there, where a SQLite file is expected"
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        return f"{where}: cannot be read ({_reason(error)})"
    if header and header != SQLITE_HEADER:
        return (
            f"{where}: not a SQLite database (it begins {header!r}, not b'SQLite format 3'); "
            f"move it away or name another file"
        )
    return None


def file_state(path: Path) -> tuple[int, int] | None:
    """(size, modification time) of the regular file at `path`; None when there is none."""
    if not path.is_file():
        return None
    found = path.stat()
    return found.st_size, found.st_mtime_ns


def write_failed(where: str, path: Path, error: OSError, before: tuple | None) -> str:
    """The line for a write of file `path` that failed after its check passed (a disk that
    filled since, ...); what it half wrote is removed: a file it created or changed (its
    file_state differs from `before`), never a device."""
    if path.is_file() and file_state(path) != before:
        path.unlink()
    if error.errno == errno.ENOSPC:
        line = NoSpaceLine(f"{where}: no space left on device; nothing written")
        line.place = f"{where}: nothing written"
        return line
    return f"{where}: cannot be written ({_reason(error)})"
