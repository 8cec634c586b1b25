"""A smoke study on PostgreSQL whose password holds `/ ? # %`, given in two URL forms
(unencoded in the user part, and as `?password=`): the password, raw or percent-encoded,
is in no file the study writes, no row of either store, no line it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote, urlsplit

import psycopg2
import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.ray, pytest.mark.slow]
PASSWORD = "Pw/with?odd#chars%x"  # every character urlsplit misreads, and a `%`


def study_role(postgres) -> tuple[str, str, list[str]]:
    """Two databases owned by a role with PASSWORD: the MLflow and Optuna URLs, the names."""
    names = [postgres.create_database(kind).rpartition("/")[2] for kind in ("mlflow", "optuna")]
    admin = psycopg2.connect(postgres.admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("CREATE ROLE study_pw LOGIN PASSWORD %s", (PASSWORD,))
        for name in names:
            cursor.execute(f'ALTER DATABASE "{name}" OWNER TO study_pw')
    admin.close()
    host = urlsplit(postgres.admin_url).netloc.rpartition("@")[2]
    return (
        f"postgresql://study_pw:{PASSWORD}@{host}/{names[0]}",  # unencoded: as SQLAlchemy reads it
        f"postgresql://study_pw@{host}/{names[1]}?password={quote(PASSWORD, safe='')}",
        names,
    )


def table_text(url: str) -> str:
    """Every row of every table of a database, as text."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("select tablename from pg_tables where schemaname = 'public'")
        tables = [row[0] for row in cursor.fetchall()]
        rows = []
        for table in tables:
            cursor.execute(f'select t::text from "{table}" t')
            rows += [row[0] for row in cursor.fetchall()]
    return "\n".join(rows)


def test_no_password_in_any_file_row_or_line_of_a_study(postgres, tmp_path):
    mlflow_db, optuna_db, names = study_role(postgres)
    forms = {PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env |= {"STUDY_MLFLOW_DB": mlflow_db, "STUDY_OPTUNA_DB": optuna_db}
    done = subprocess.run(
        [sys.executable, str(ROOT / "study" / "run.py"), "run", "--preset", "smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "study_pw:***@" in done.stdout  # the store is named, masked
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "config.yaml" for path in files)  # the artifacts are here
    stores = "\n".join(table_text(postgres.url(name)) for name in names)  # as admin
    assert "smoke" in stores  # the stores were written
    for secret in forms:
        assert secret not in done.stdout + done.stderr
        assert secret not in stores
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
