# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test verify lint bench venv migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

run: demo
	@echo ""
	@echo "  Member portal: http://$(HOST):$(PORT)/  (demo member login: member / demo-pass-2026, household cj-1)"
	@echo "  Staff admin:   http://$(HOST):$(PORT)/admin/  (admin, marketing, support, analyst / demo-pass-2026)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv
	$(BIN)/python -m pytest

# The reliability proof (tests/verify, docs/reliability.md): real PostgreSQL, Redis and Celery on
# 127.0.0.1, about 20 minutes; run before each release. Figures go to test-artifacts/verify-figures.md.
VERIFY_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/loyalty_verify)
VERIFY_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
verify: venv
	CI=1 DATABASE_URL=$(VERIFY_DATABASE_URL) REDIS_URL=$(VERIFY_REDIS_URL) $(BIN)/python -m pytest --verify tests/verify $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Every benchmark entry point (bench/*_bench.py, bench/purchase_cost.py); their helper modules are not run alone.
bench: venv
	@for script in bench/*_bench.py bench/purchase_cost.py; do [ -e "$$script" ] || continue; echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
