"""The smoke study on PostgreSQL: MLflow and Optuna each in its own database, the URLs
(with their password) only in the environment, never printed or written to disk."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from study import tracking as t
from study.config_file import load_preset
from study.confirm_phase import confirm_budget
from study.search_phase import search_budget, search_labels
from study.stores import sqlalchemy_url
from tests.conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.ray]
SMOKE = load_preset("smoke")


def test_smoke_study_on_postgresql(postgres, tmp_path):
    mlflow_db = postgres.create_database("mlflow")
    optuna_db = postgres.create_database("optuna")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env |= {"STUDY_MLFLOW_DB": mlflow_db, "STUDY_OPTUNA_DB": optuna_db}
    done = subprocess.run(
        [sys.executable, str(ROOT / "study" / "run.py"), "run", "--preset", "smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert postgres.password not in done.stdout + done.stderr
    assert "postgresql://postgres:***@127.0.0.1" in done.stdout
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()
    for path in (tmp_path / "ray_results").rglob("*"):  # tuner.pkl, experiment state, ...
        if path.is_file():
            assert postgres.password.encode() not in path.read_bytes(), path

    client = t.client_for(mlflow_db)
    experiment = client.get_experiment_by_name(SMOKE.name)
    parents = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert postgres.password not in str(parents[0].data.params)
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parents[0].info.run_id}'",
    )
    search_trials = search_budget(SMOKE)
    confirm_trials = confirm_budget(SMOKE)
    assert len(children) == search_trials + confirm_trials
    assert all(run.info.status == "FINISHED" for run in children)

    summaries = optuna.get_all_study_summaries(sqlalchemy_url(optuna_db))
    assert len(summaries) == len(SMOKE.target.sizes) * len(search_labels(SMOKE))
    assert sum(s.n_trials for s in summaries) >= search_trials
    # MLflow's tables are not in Optuna's database, nor the other way round.
    import psycopg2

    for url, present, absent in (
        (mlflow_db, "experiments", "trials"),
        (optuna_db, "trials", "experiments"),
    ):
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("select tablename from pg_tables where schemaname = 'public'")
            tables = {row[0] for row in cursor.fetchall()}
        assert present in tables and absent not in tables

    best = subprocess.run(
        [sys.executable, str(ROOT / "study" / "run.py"), "best-freeze", "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert best.returncode == 0, best.stderr
    assert '"size": "2"' in best.stdout
