"""Store URLs: where they come from, and keeping their passwords out of files and logs.

A study's YAML names its stores (SQLite files by default). On a cluster the PostgreSQL
URLs, with their passwords, come from the environment instead:

    STUDY_MLFLOW_DB     MLflow tracking store (else MLFLOW_TRACKING_URI, else the YAML's)
    STUDY_OPTUNA_DB     Optuna storage (else the YAML's)

A password written into a YAML file is refused at validation. Everything this service
prints, logs to MLflow or pickles into Ray's experiment folder carries the URL with its
password masked; `reveal` turns such a masked URL back into the real one by finding it in
the environment, so a restored Ray experiment reconnects without the password on disk
(`mask_urls` / `reveal_urls`: what every object Ray pickles does with the URLs it holds).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlencode

ENV_MLFLOW = "STUDY_MLFLOW_DB"
ENV_OPTUNA = "STUDY_OPTUNA_DB"
ENV_MLFLOW_FALLBACK = "MLFLOW_TRACKING_URI"
ENV_VARS = (ENV_MLFLOW, ENV_OPTUNA, ENV_MLFLOW_FALLBACK)
MASK = "***"
# Query parameters a driver reads as a secret (libpq: ?password=, ?sslpassword=).
SECRET_QUERY_KEYS = ("password", "sslpassword")
# What a URL looks like to SQLAlchemy: `name://`, the name letters, digits, `_` and `+`.
SCHEME = re.compile(r"^[\w+]+://")
# Fallback for a URL SQLAlchemy cannot parse (e.g. port `abc`): everything between
# `user:` and the last `@` is taken for a password, so a broken URL never shows one.
USERINFO = re.compile(r"^([\w+]+://[^:/@]*:)(.*)@")


def parsed(url: str):
    """The URL as SQLAlchemy's `make_url` reads it (the parser the connection uses), or
    None when it is not a `scheme://` URL or SQLAlchemy cannot parse it."""
    from sqlalchemy.engine import make_url

    if not SCHEME.match(url):
        return None
    try:
        found = make_url(url)
    except Exception:  # ArgumentError, ValueError (a port that is not a number), ...
        return None
    # An unencoded `@` in a password ends it early for SQLAlchemy; the rest would be
    # shown as part of the host, so such a URL counts as unparsable (and is masked whole).
    return None if "@" in (found.host or "") else found


def secrets(url: str) -> list[str]:
    """Every password in the URL: after `user:`, and `?password=` (as the driver gets them)."""
    found = parsed(url)
    if found is None:
        broken = USERINFO.match(url) if SCHEME.match(url) else None
        return [broken.group(2)] if broken and broken.group(2) else []
    values = [found.password] if found.password else []
    for key in SECRET_QUERY_KEYS:
        value = found.query.get(key)
        values += [value] if isinstance(value, str) else list(value or ())
    return [value for value in values if value]


def password(url: str) -> str | None:
    """The (first) password in a URL such as postgresql://user:secret@host/db, or None."""
    found = secrets(url)
    return found[0] if found else None


def redact(url: str) -> str:
    """The URL with every password replaced by ***; never raises."""
    if not secrets(url):
        return url
    found = parsed(url)
    if found is None:
        return USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", url, count=1)
    query = {k: (MASK if k in SECRET_QUERY_KEYS else v) for k, v in found.query.items()}
    text = found.set(query={}).render_as_string(hide_password=True)
    return f"{text}?{urlencode(query, doseq=True, safe='*')}" if query else text


def reveal(url: str) -> str:
    """The real URL behind a redacted one, looked up in the environment.

    Raises ValueError when the URL is masked and no environment variable holds it.
    """
    if MASK not in url:
        return url
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value and url in (redact(value), redact(sqlalchemy_url(value))):
            return value
    raise ValueError(
        f"the store {url} needs its password: set {ENV_MLFLOW} or {ENV_OPTUNA} to the full URL"
    )


def mask_urls(state: dict, names: Iterable[str]) -> dict:
    """A copy of `state` (an object's attributes, about to be pickled: Ray keeps searchers,
    callbacks and the config in its experiment folder) with the store URL under each of
    `names` masked. The value is a URL, or a tuple whose first item is one (a store to
    reconnect to: its URL, then what else that takes); any other value is left as it is."""
    return {**state, **{name: _on_url(state[name], redact) for name in names}}


def reveal_urls(state: dict, names: Iterable[str], *, required: bool = True) -> dict:
    """A copy of unpickled `state` with each URL `mask_urls` masked the real one again,
    found in the environment (`reveal`). Where the environment lacks it: ValueError, or,
    when not `required`, the masked URL kept (e.g. on a worker node, which never opens
    the stores)."""
    revealed = dict(state)
    for name in names:
        try:
            revealed[name] = _on_url(state[name], reveal)
        except ValueError:
            if required:
                raise
    return revealed


def _on_url(value, change):
    """`value` with `change` applied to its URL (see mask_urls)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return (change(value[0]), *value[1:])
    return value


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL as SQLAlchemy reads it (`sqlite:///mlflow.db` ->
    mlflow.db, `sqlite:////abs/optuna.db` -> /abs/optuna.db); None for any other URL, an
    in-memory database, or a URL SQLAlchemy cannot parse."""
    found = parsed(url)
    if found is None or found.get_backend_name() != "sqlite":
        return None
    database = found.database
    return Path(database) if database and database != ":memory:" else None


def mlflow_from_env() -> str | None:
    return os.environ.get(ENV_MLFLOW) or os.environ.get(ENV_MLFLOW_FALLBACK) or None


def optuna_from_env() -> str | None:
    return os.environ.get(ENV_OPTUNA) or None


def scheme(url: str) -> str:
    """The URL's scheme without its driver: `postgresql` for `postgresql+psycopg2://`."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def sqlalchemy_url(url: str) -> str:
    """The URL with a PostgreSQL driver SQLAlchemy can load.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3; the `postgres` extra installs
    psycopg2, so a bare URL is pinned to whichever of the two is installed. The URL is
    written back by SQLAlchemy, so a password with `/ ? #` reaches MLflow and Optuna
    percent-encoded, where their own URL checks cannot misread it.
    """
    found = parsed(url)
    if found is None or found.drivername not in ("postgresql", "postgres"):
        return url
    import importlib.util

    driver = "psycopg" if importlib.util.find_spec("psycopg") is not None else "psycopg2"
    return found.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)
