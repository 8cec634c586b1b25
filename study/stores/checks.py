"""Store URLs checked before anything is written: scheme, driver, reachability; and
every place a study writes (study.stores.places).

A URL MLflow or Optuna cannot use (garbage, `http://` for Optuna, `mysql://` without its
driver, an unencoded `@` in a password, an in-memory SQLite database, a SQLite file that
is a folder or not a database) or a database server that does not answer ends the command
with one line naming the URL (password masked) or the host, within seconds: left to
themselves, MLflow retries a silent server for over a minute (and a folder for ever) and
both trace back after writing a SQLite file or a FAILED run. Then the places: the SQLite
files and the folders of the stores, each one that cannot be written (or is on a full
disk: exit 3) named in one line. Nothing here creates a file or a table.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from study.errors import BadInput, ConfigError
from study.stores.places import (
    file_problem,
    folder_problem,
    raise_first,
    sqlite_file_problem,
)
from study.stores.urls import (
    ENV_MLFLOW,
    ENV_MLFLOW_FALLBACK,
    ENV_OPTUNA,
    parsed,
    redact,
    scheme,
    secrets,
    sqlalchemy_url,
    sqlite_path,
)

TIMEOUT_S = 5  # per step (socket, then login): an unreachable store fails within 15 s
DATABASES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
TRACKING_SERVERS = ("http", "https")
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}
DEFAULT_PORTS |= {"mssql": 1433, "oracle": 1521, "http": 80, "https": 443}
ALLOWED = {
    "mlflow": "sqlite:///<file>, postgresql://, mysql://, mssql:// or http(s)://<server>",
    "optuna": "sqlite:///<file>, postgresql://, mysql:// or mssql://",
}


def origin(key: str, url: str) -> str:
    """Where the URL was given: the environment variable holding it, or the config key."""
    names = (ENV_MLFLOW, ENV_MLFLOW_FALLBACK) if key == "mlflow" else (ENV_OPTUNA,)
    return next((name for name in names if os.environ.get(name) == url), f"stores.{key}")


def url_problem(key: str, url: str, reach: bool = True, where: str = "") -> str | None:
    """What is wrong with store `key`'s URL (one line), or None when it can be used."""
    where, shown, kind = where or origin(key, url), redact(url), scheme(url)
    allowed = DATABASES + (TRACKING_SERVERS if key == "mlflow" else ())
    if kind not in allowed:
        return f"{where} {shown!r} is not a store URL this service can use; allowed: {ALLOWED[key]}"
    found = parsed(url)
    if found is None:
        return (
            f"{where} {shown!r} cannot be parsed (a password with `@`, or a port that is not "
            f"a number? write special characters percent-encoded, e.g. @ as %40)"
        )
    if found.port is not None and not 0 < found.port < 65536:
        return f"{where} {shown!r}: port {found.port} is out of range (1..65535)"
    if kind in TRACKING_SERVERS:
        return _server_problem(where, url) if reach else None
    problem = _driver_problem(where, shown, url) or _sqlite_problem(key, where, url)
    if problem or not reach or kind == "sqlite":
        return problem
    return _database_problem(where, url, found)


def _driver_problem(where: str, shown: str, url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        dialect = make_url(sqlalchemy_url(url)).get_dialect()
        dialect.import_dbapi()
    except Exception as error:  # NoSuchModuleError, ImportError: no dialect or driver
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        extra = " (pip install '.[postgres]')" if scheme(url) in ("postgresql", "postgres") else ""
        return f"{where} {shown!r}: its database driver is not installed{extra}: {reason}"
    return None


def _sqlite_problem(key: str, where: str, url: str) -> str | None:
    if in_memory(url):
        return (
            f"{where} {redact(url)!r} is an in-memory database: it keeps nothing once "
            f"the command ends; give a file, e.g. sqlite:///{key}.db"
        )
    path = sqlite_path(url)
    if path is None:
        return None
    folder = path.expanduser().parent
    if not folder.is_dir():
        return f"{where}: the folder {folder} of the SQLite file does not exist"
    return sqlite_file_problem(f"{where} {path}", path)


def in_memory(url: str) -> bool:
    """A SQLite URL of a database in memory (`sqlite://`, `sqlite:///:memory:`,
    `?mode=memory`): what is written there is gone when the command ends."""
    found = parsed(url)
    if found is None or found.get_backend_name() != "sqlite":
        return False
    return found.database in (None, "", ":memory:") or found.query.get("mode") == "memory"


def _reach(where: str, host: str, port: int, what: str) -> str | None:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError as error:
        reason = str(error) or type(error).__name__
        return f"{where}: cannot reach the {what} at {host}:{port} ({reason})"
    return None


def _database_problem(where: str, url: str, found) -> str | None:
    host = found.host or "localhost"
    port = found.port or DEFAULT_PORTS.get(scheme(url), 0)
    problem = _reach(where, host, port, f"{found.get_backend_name()} server")
    if problem:
        return problem
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    login_timeout = ("postgresql", "postgres", "mysql", "mariadb")  # libpq, MySQL drivers
    args = {"connect_timeout": TIMEOUT_S} if scheme(url) in login_timeout else {}
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool, connect_args=args)
    try:
        engine.connect().close()  # login and database: nothing is created
    except Exception as error:  # the driver's OperationalError, whatever the driver
        reason = " ".join(str(getattr(error, "orig", error)).split())
        for secret in secrets(url):
            reason = reason.replace(secret, "***")
        return f"{where}: cannot log in to {host}:{port}: {reason[:300]}"
    finally:
        engine.dispose()
    return None


def _server_problem(where: str, url: str) -> str | None:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    found = parsed(url)
    host, port = found.host or "", found.port or DEFAULT_PORTS[scheme(url)]
    problem = _reach(where, host, port, "MLflow tracking server")
    if problem:
        return problem
    try:
        address = f"[{host}]" if ":" in host else host  # urllib takes no user:password@
        path = f"/{found.database.strip('/')}" if found.database else ""
        urlopen(f"{scheme(url)}://{address}:{port}{path}/health", timeout=TIMEOUT_S).close()
    except HTTPError:
        return None  # it answers: a proxy or an older server without /health
    except OSError as error:
        return f"{where}: the MLflow tracking server at {host}:{port} does not answer ({error})"
    return None


def store_problems(stores, reach: bool = True) -> list[str]:
    """One line per store of a study config (`stores.mlflow`, `stores.optuna`) that
    cannot be used; [] when both can."""
    found = (url_problem(key, getattr(stores, key), reach) for key in ("mlflow", "optuna"))
    return [problem for problem in found if problem]


def check_stores(stores) -> None:
    """Raise ConfigError with the first problem of the study's stores (before any write)."""
    problems = store_problems(stores)
    if problems:
        raise ConfigError(problems[0])


FOLDERS = ("artifacts", "ray_results", "checkpoints", "features")  # StoresConfig's folders


def local_folder(location: str) -> Path | None:
    """The folder of a store location (`stores.artifacts` may be a URI: `file://` is a
    folder here, `s3://` and the like are not this machine's to check)."""
    if location.startswith("file:"):
        return Path(url2pathname(urlparse(location).path))
    return None if "://" in location else Path(location)


def place_problems(stores) -> list[str]:
    """One line per place of a study config's stores it cannot write (a NoSpaceLine for a
    full disk); [] when every place can be written. A SQLite URL's own problems (a folder
    there, not a database) are store_problems'."""
    problems, places = [], []
    for key in ("mlflow", "optuna"):
        url, path = getattr(stores, key), sqlite_path(getattr(stores, key))
        if path is None or url_problem(key, url, reach=False):
            continue
        places.append((origin(key, url), Path(os.path.abspath(path.expanduser())), True))
        problems.append(file_problem(f"{origin(key, url)} {path}", path, journal=True))
    for key in FOLDERS:
        path = local_folder(getattr(stores, key))
        if path is not None:
            places.append((f"stores.{key}", Path(os.path.abspath(path.expanduser())), False))
            problems.append(folder_problem(f"stores.{key} {getattr(stores, key)}", path))
    return [problem for problem in [_shared_file(places), *problems] if problem]


def _shared_file(places: list[tuple[str, Path, bool]]) -> str | None:
    """A SQLite file that is also another store's file or folder, or lies in its way."""
    for number, (name, path, is_file) in enumerate(places):
        for other, there, _ in places[number + 1 :] if is_file else ():
            if path == there:
                return f"{name} and {other} are both {path}: give each store its own place"
            if path in there.parents:
                return f"{other} {there} lies inside {name}'s SQLite file {path}: move one"
    return None


def check_places(stores) -> None:
    """Raise ConfigError (NoSpace for a full disk) with the first place of the study's
    stores that cannot be written, before anything is written."""
    raise_first(place_problems(stores))


def check_tracking_uri(url: str) -> None:
    """For `best-freeze` and `ui`: the URL comes from --tracking-uri or the environment."""
    where = origin("mlflow", url)
    problem = url_problem("mlflow", url, where=where.replace("stores.mlflow", "--tracking-uri"))
    if problem:
        raise ConfigError(problem)


def existing_store(uri: str) -> str:
    """Refuse to query a SQLite store that does not exist (MLflow would create it)."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise BadInput(
            f"no MLflow store at {path} (tracking URI {uri}); run `study run` first "
            f"or pass --tracking-uri"
        )
    return uri
