"""Store URLs: where they come from, and keeping their passwords out of files and logs.

A study's YAML names its stores (SQLite files by default). On a cluster the PostgreSQL
URLs, with their passwords, come from the environment instead:

    STUDY_MLFLOW_DB     MLflow tracking store (else MLFLOW_TRACKING_URI, else the YAML's)
    STUDY_OPTUNA_DB     Optuna storage (else the YAML's)

A password written into a YAML file is refused at validation. Everything this service
prints, logs to MLflow or pickles into Ray's experiment folder carries the URL with its
password masked; `reveal` turns such a masked URL back into the real one by finding it in
the environment, so a restored Ray experiment reconnects without the password on disk.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

ENV_MLFLOW = "STUDY_MLFLOW_DB"
ENV_OPTUNA = "STUDY_OPTUNA_DB"
ENV_MLFLOW_FALLBACK = "MLFLOW_TRACKING_URI"
ENV_VARS = (ENV_MLFLOW, ENV_OPTUNA, ENV_MLFLOW_FALLBACK)
MASK = "***"


def password(url: str) -> str | None:
    """The password in a URL such as postgresql://user:secret@host/db, or None."""
    if "://" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    secret = password(url)
    if not secret:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}{port}"))


def reveal(url: str) -> str:
    """The real URL behind a redacted one, looked up in the environment.

    Raises ValueError when the URL is masked and no environment variable holds it.
    """
    if f":{MASK}@" not in url:
        return url
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value and url in (redact(value), redact(sqlalchemy_url(value))):
            return value
    raise ValueError(
        f"the store {url} needs its password: set {ENV_MLFLOW} or {ENV_OPTUNA} to the full URL"
    )


def mlflow_from_env() -> str | None:
    return os.environ.get(ENV_MLFLOW) or os.environ.get(ENV_MLFLOW_FALLBACK) or None


def optuna_from_env() -> str | None:
    return os.environ.get(ENV_OPTUNA) or None


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def sqlalchemy_url(url: str) -> str:
    """The URL with a PostgreSQL driver SQLAlchemy can load.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3; the `postgres` extra installs
    psycopg2, so a bare URL is pinned to whichever of the two is installed.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return f"postgresql+psycopg2://{rest}"
