"""The smoke study on PostgreSQL: MLflow and Optuna each in its own database of a role whose
password holds `/ ? # %`, given only in the environment and in two URL forms (unencoded in
the user part, and as `?password=`). The study works; the password, raw or percent-encoded,
is in no file the study writes, no row of either store, no line it prints."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import optuna
import psycopg2
import pytest

from study.config.files import load_preset
from study.stages.confirm import confirm_budget
from study.stages.context import search_labels
from study.stages.search import search_budget
from study.stores.urls import sqlalchemy_url
from study.tracking import client as t
from tests.conftest import run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.ray, pytest.mark.slow]
SMOKE = load_preset("smoke")
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


def tables(url: str) -> dict[str, list[str]]:
    """Every row of every table of a database, as text, by table."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("select tablename from pg_tables where schemaname = 'public'")
        names = [row[0] for row in cursor.fetchall()]
        rows = {}
        for table in names:
            cursor.execute(f'select t::text from "{table}" t')
            rows[table] = [row[0] for row in cursor.fetchall()]
    return rows


def test_smoke_study_on_postgresql_keeps_its_password_out_of_every_file_row_and_line(
    postgres, tmp_path
):
    mlflow_db, optuna_db, names = study_role(postgres)
    env = {"STUDY_MLFLOW_DB": mlflow_db, "STUDY_OPTUNA_DB": optuna_db}
    done = run_cli(["run", "--preset", "smoke"], tmp_path, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "postgresql://study_pw:***@127.0.0.1" in done.stdout  # the store is named, masked
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()

    client = t.client_for(mlflow_db)
    experiment = client.get_experiment_by_name(SMOKE.name)
    [parent] = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    assert parent.info.status == "FINISHED"
    children = t.child_runs(client, parent.info.run_id)
    labels = search_labels(SMOKE)
    assert len(children) == search_budget(SMOKE, labels) + confirm_budget(SMOKE, labels)
    assert all(run.info.status == "FINISHED" for run in children)
    summaries = optuna.get_all_study_summaries(sqlalchemy_url(optuna_db))
    assert len(summaries) == len(SMOKE.target.sizes) * len(search_labels(SMOKE))
    assert sum(s.n_trials for s in summaries) >= search_budget(SMOKE, labels)

    mlflow_rows, optuna_rows = (tables(postgres.url(name)) for name in names)  # as admin
    # MLflow's tables are not in Optuna's database, nor the other way round.
    assert "experiments" in mlflow_rows and "trials" not in mlflow_rows
    assert "trials" in optuna_rows and "experiments" not in optuna_rows
    stores = "\n".join(
        row for rows in (mlflow_rows, optuna_rows) for r in rows.values() for row in r
    )
    files = [path for path in tmp_path.rglob("*") if path.is_file()]  # ray_results' pickles too
    assert any(path.name == "config.yaml" for path in files)  # the artifacts are here
    for secret in {PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD)}:
        assert secret not in done.stdout + done.stderr
        assert secret not in stores
        for path in files:
            assert secret.encode() not in path.read_bytes(), path

    best = run_cli(["best-freeze", "--format", "json"], tmp_path, timeout=300, env=env)
    assert best.returncode == 0, best.stderr
    assert '"size": "2"' in best.stdout
