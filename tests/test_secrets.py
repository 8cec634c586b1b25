"""Store passwords: found and masked with SQLAlchemy's own parser (every URL form it
connects with), refused in config files, never in a dump, a log or a process list."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy.engine import make_url

from study.config.files import parse_config
from study.errors import ConfigError
from study.stores.urls import MASK, password, redact, reveal, secrets, sqlalchemy_url
from tests.conftest import ROOT
from tests.postgres_server import free_port

SECRET = "s3cr/t?x#y"  # / ? # unencoded: urlsplit misreads them, SQLAlchemy does not
# Every form in which SQLAlchemy hands a password to the driver (form, the password the
# driver gets, the text in the URL).
URL_FORMS = {
    "unencoded / ? #": (f"postgresql://study:{SECRET}@db:5432/mlflow", SECRET, SECRET),
    "percent-encoded": (
        f"postgresql://study:{quote(SECRET, safe='')}@db/mlflow",
        SECRET,
        quote(SECRET, safe=""),
    ),
    "query parameter": (
        "postgresql://study@db/mlflow?password=qu3ry&sslmode=require",
        "qu3ry",
        "qu3ry",
    ),
    "query and userinfo": ("postgres://study:us3r@db/optuna?password=qu3ry", "us3r", "us3r"),
    "port out of range": ("postgresql://study:p0rt@db:99999/mlflow", "p0rt", "p0rt"),
    "port not a number": ("postgresql://study:n4n@db:abc/mlflow", "n4n", "n4n"),
    "unencoded @": ("postgresql://study:a@t@db/mlflow", "a@t", "a@t"),
    "driver named": ("postgresql+psycopg2://study:dr1ver@db/mlflow", "dr1ver", "dr1ver"),
    "IPv6 host": ("postgresql://study:v6pw@[::1]:5432/mlflow", "v6pw", "v6pw"),
    "tracking server": ("http://study:h77p@mlflow.example:5000", "h77p", "h77p"),
}


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_every_url_form_is_masked(form):
    url, secret, written = URL_FORMS[form]
    assert secret in secrets(url) and password(url)
    shown = redact(url)  # never raises, whatever the port
    assert secret not in shown and written not in shown and MASK in shown
    assert redact(shown) == shown  # masking twice changes nothing
    try:  # what SQLAlchemy (so the driver) takes for the password is among those masked
        connects_with = make_url(url).password
    except ValueError:
        connects_with = None
    assert connects_with is None or any(connects_with in found for found in secrets(url))


def test_urls_without_passwords_are_left_alone():
    for url in ("sqlite:///mlflow.db", "sqlite:////abs/optuna.db", "http://127.0.0.1:5000", "x"):
        assert redact(url) == url and password(url) is None


def test_the_driver_gets_the_password_through_the_rewritten_url():
    url = URL_FORMS["unencoded / ? #"][0]
    pinned = sqlalchemy_url(url)
    assert pinned.startswith("postgresql+psycopg")
    assert make_url(pinned).password == SECRET and make_url(pinned).database == "mlflow"


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_a_password_in_a_config_file_is_refused_in_every_form(form):
    url, secret, written = URL_FORMS[form]
    with pytest.raises(ConfigError, match="must not be written in a config file") as error:
        parse_config({"stores": {"optuna": url}}, "study.yaml")
    assert secret not in str(error.value) and written not in str(error.value)


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_a_url_from_the_environment_is_masked_in_the_config_dump(monkeypatch, form):
    url, secret, written = URL_FORMS[form]
    monkeypatch.setenv("STUDY_OPTUNA_DB", url)
    config = parse_config({"name": "env"}, "study.yaml")
    assert config.stores.optuna == url  # the real URL, to connect with
    dumped = yaml.safe_dump(config.model_dump(mode="json"))
    assert secret not in dumped and written not in dumped
    assert reveal(config.model_dump(mode="json")["stores"]["optuna"]) == url


# --- the MLflow server of cluster.yaml / cluster.local.yaml --------------------------------


def _server_command(name: str, port: int) -> str:
    """The head's `mlflow server` command of a cluster file, on 127.0.0.1 and `port`."""
    commands = yaml.safe_load((ROOT / name).read_text())["head_start_ray_commands"]
    command = next(c for c in commands if "mlflow server" in c)
    command = re.sub(r'--host ("[^"]*"|\S+)', "--host 127.0.0.1", command)
    return re.sub(r"--port \d+", f"--port {port}", command)


def _command_lines() -> str:
    lines = []
    for entry in Path("/proc").iterdir():
        try:
            lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # not a process, or it ended meanwhile
    return "\n".join(lines)


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster.local.yaml"])
def test_the_mlflow_servers_store_url_is_not_on_the_process_list(tmp_path, name):
    import sys

    store = f"sqlite:///{tmp_path}/store-{os.getpid()}-pw.db"  # the secret: the whole URL
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "STUDY_MLFLOW_DB": store}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    shell = subprocess.Popen(
        ["bash", "-c", _server_command(name, port) + "; wait"], env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "mlflow-server.log").read_text()
                time.sleep(1)
        assert Path(f"{tmp_path}/store-{os.getpid()}-pw.db").is_file()  # it is the backend
        assert store not in _command_lines()
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(timeout=30)
