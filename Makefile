# hytrace — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint install migrate demo bench clean messages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hytrace needs Python 3.11+ (found " + sys.version.split()[0] + ")"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python -m trace.cli migrate

demo: migrate
	$(BIN)/python -m trace.cli demo

## The product on the embedded default (SQLite under ./data/), with demo data: the API and, beside
## it, a Celery worker on the embedded broker (a SQLite file) that renders print runs and appends to
## the public log, and a development witness (its key made once in data/witness.key) that checks the
## log once a minute and cosigns it. The log's own key is made once in data/tlog-signing.key.
## X-Forwarded-For is believed only from the proxies FORWARDED_ALLOW_IPS names (unset: none; uvicorn's
## own default would believe any process on this host).
run: demo
	@export HYTRACE_TLOG_WITNESS_KEYS="$$($(BIN)/python -m trace.cli tlog-dev-witness)"; \
	key="$$($(BIN)/python -m trace.cli tlog-key)"; \
	trap 'kill $$worker $$witness 2>/dev/null; wait $$worker $$witness 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m celery -A workers.app --quiet worker --pool solo --loglevel WARNING -n hytrace-run@%h & worker=$$!; \
	$(BIN)/python -m trace.logcheck http://$(HOST):$(PORT) --state data/witness-state.json --key "$$key" \
	  --witness-key data/witness.key --every 60 --timeout 5 >data/witness.log 2>&1 & witness=$$!; \
	FORWARDED_ALLOW_IPS="$${FORWARDED_ALLOW_IPS:-}" $(BIN)/python -m uvicorn api.main:app --host $(HOST) --port $(PORT)

## The whole suite. Tests needing PostgreSQL, Redis or Chromium skip (with a reason) when absent.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff (lint and format) and mypy, as CI runs them.
lint: install
	$(BIN)/python -m ruff check trace api labels workers tests migrations bench
	$(BIN)/python -m ruff format --check trace api labels workers tests migrations bench
	$(BIN)/python -m mypy trace api labels workers

bench: install
	$(BIN)/python -m bench.capture --db both
	$(BIN)/python -m bench.lineage --db both
	$(BIN)/python -m bench.labels
	$(BIN)/python -m bench.print_runs --db both
	$(BIN)/python -m bench.public_page --db both
	$(BIN)/python -m bench.epcis --db both
	$(BIN)/python -m bench.scale --db both --all

## After changing page texts: extract them and merge into the Vietnamese catalogue, then translate
## the new entries in api/locale/vi/LC_MESSAGES/messages.po (a test fails while any is missing).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -o data/messages.pot --no-location --omit-header -w 100 .
	$(BIN)/pybabel update -i data/messages.pot -d api/locale -l vi --no-fuzzy-matching --ignore-obsolete -w 100

clean:
	rm -rf $(VENV) data
