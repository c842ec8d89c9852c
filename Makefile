# Data mesh on Dagster — every workflow goes through this file. `make help` lists targets.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# The Flink distribution (bin/, conf/, lib/) comes from the PyFlink wheel, in a venv of its own.
FLINK_VENV ?= .venv-flink
PYTHON ?= python3
JARS := $(CURDIR)/.mesh/jars
# The platform's own Flink format (Confluent-framed Avro against the registry's REST API),
# built by Maven from jvm/flink-format when that module exists.
FORMAT_SRC := $(shell find jvm/flink-format -type f -not -path '*/target/*' 2>/dev/null)
FORMAT_JAR := $(if $(FORMAT_SRC),$(JARS)/flink/mesh-flink-format.jar)
# Stamp of the last passing JUnit run of that module (building the jar runs them too).
FORMAT_TESTED := $(if $(FORMAT_SRC),$(JARS)/flink/.format-tested)
DAGSTER_PORT ?= 3000
# Changes a second the demo generator writes (`make dev DEMO_RATE=200/s`).
DEMO_RATE ?= 5/s

.PHONY: help install system-deps python-deps jars dev up down status test test-unit jvm-test lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: system-deps python-deps jars ## everything the platform and the tests need

system-deps: ## Debian packages that are missing (JDK, Maven, PostgreSQL 15, kcat, chromium)
	@scripts/ensure-system-deps.sh

python-deps: $(BIN)/.installed $(FLINK_VENV)/.installed

$(BIN)/.installed: pyproject.toml
	@echo "==> Python venv in $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[dev]'
	touch $@

$(FLINK_VENV)/.installed: jvm/flink/requirements.txt
	@echo "==> Flink distribution (PyFlink wheel) in $(FLINK_VENV): the first install takes a few minutes"
	test -x $(FLINK_VENV)/bin/python || $(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install -q --upgrade pip
	$(FLINK_VENV)/bin/pip install --progress-bar off -r jvm/flink/requirements.txt
	touch $@

jars: $(JARS)/kafka/.resolved $(JARS)/flink/.resolved $(FORMAT_JAR) ## JVM jars from Maven Central

# Flink's lib/ already has slf4j; a second copy on its classpath only causes warnings.
EXCLUDE_flink := -DexcludeArtifactIds=slf4j-api,jsr305

$(JARS)/%/.resolved: jvm/%/pom.xml
	@echo "==> Maven: resolving jvm/$*/pom.xml into $(JARS)/$*"
	rm -rf $(JARS)/$* && mkdir -p $(JARS)/$*
	mvn -q -B -f jvm/$*/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	    $(EXCLUDE_$*) -DoutputDirectory=$(JARS)/$*
	touch $@

$(JARS)/flink/mesh-flink-format.jar: $(FORMAT_SRC) $(JARS)/flink/.resolved
	@echo "==> Maven: building and testing jvm/flink-format"
	mvn -q -B -f jvm/flink-format/pom.xml package
	cp jvm/flink-format/target/mesh-flink-format.jar $@
	touch $(FORMAT_TESTED)

dev: install ## install, start the stack, the demo and its generator, `dagster dev` on :3000
	$(BIN)/mesh dev --port $(DAGSTER_PORT) --rate $(DEMO_RATE)

up: install ## start the embedded stack only
	$(BIN)/mesh up

down: ## stop everything `mesh up` started
	$(BIN)/mesh down

status: ## endpoints and health of the stack
	$(BIN)/mesh status

test: install jvm-test ## JUnit, unit + integration tests (starts its own stack on free ports)
	$(BIN)/pytest -p no:cacheprovider

jvm-test: $(FORMAT_TESTED) ## JUnit tests of jvm/flink-format (again only when it changed)

$(JARS)/flink/.format-tested: $(FORMAT_SRC)
	@echo "==> Maven: JUnit tests of jvm/flink-format"
	mvn -q -B -f jvm/flink-format/pom.xml test
	mkdir -p $(@D) && touch $@

test-unit: python-deps ## unit tests only (no services)
	$(BIN)/pytest -p no:cacheprovider tests/unit

lint: python-deps ## ruff (lint, format), mypy --strict (platform, bench/, tests/), import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# `make bench AREAS=cdc,sink` measures those areas only; the others keep their figures.
AREAS ?=
bench: install ## benchmarks -> bench/results.json, bench/REPORT.md, README's performance section
	$(BIN)/python -m bench $(AREAS)

clean: down ## remove the work directory (stack state, jars, Dagster home)
	rm -rf .mesh
