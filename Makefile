# `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/study run --preset default

lint: $(STAMP)
	$(BIN)/ruff check study trainables search_spaces tests bench
	$(BIN)/ruff format --check study trainables search_spaces tests bench

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf mlflow.db optuna.db mlartifacts ray_results pretrained feature_cache
