# Every target creates .venv itself when it is missing, so a fresh clone needs only these.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA := ../shared/data/adult
# Tests and CI read the shared copy; elsewhere the files are downloaded into data/adult.
export PIPELINE_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/adult.data),$(SHARED_DATA),data/adult)
KAFKA_PORT ?= 9092
MLFLOW_PORT ?= 5000

.PHONY: venv demo test test-unit bench bench-quick profile bench-retrain-window chaos chaos-quick lint lint-deploy format kafka-up kafka-down mlflow-ui clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The benchmark's Quix Streams peer row (optional elsewhere: the product never imports it).
$(VENV)/.peer: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,peer]'
	touch $@

demo: venv
	$(PY) -m pipeline.tools.demo

test: venv
	$(PY) -m pytest

test-unit: venv
	$(PY) -m pytest tests/unit

bench: venv $(VENV)/.peer
	$(PY) -m pipeline.tools.bench

bench-quick: venv $(VENV)/.peer
	$(PY) -m pipeline.tools.bench --quick

# Where one Predictor's loop spends its time (py-spy, a dev dependency), with each Kafka client:
# .pipeline/bench/profile-<client>.md. librdkafka drains events about four times as fast, so it
# gets four times as many: about 8 s each, some 30 quarter seconds for the loop's readings.
profile: venv
	$(PY) -m pipeline.tools.bench.profile --kafka-client kafka-python
	$(PY) -m pipeline.tools.bench.profile --kafka-client confluent-kafka --events 600000

bench-retrain-window: venv
	$(PY) -m pipeline.tools.bench --retrain-window

chaos: venv
	$(PY) -m pipeline.tools.chaos

chaos-quick: venv
	$(PY) -m pipeline.tools.chaos --quick

lint: venv lint-deploy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# deploy/ rendered and checked against Kubernetes 1.31, KEDA and Strimzi schemas (no cluster)
lint-deploy: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_deploy_manifests.py

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

kafka-up: venv
	$(PY) -m pipeline.kafka_io.broker up --port $(KAFKA_PORT)

kafka-down: venv
	$(PY) -m pipeline.kafka_io.broker down

mlflow-ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.pipeline/mlflow.db \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

clean:
	-$(PY) -m pipeline.kafka_io.broker down
	rm -rf .pipeline .pytest_cache .ruff_cache .mypy_cache
