# chatbot-auth: `make run` starts the demo, `make test` runs the suite.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 4
THREADS ?= 32
# Served on another HOST or PORT, the demo's printed links and its flow's API
# calls follow them, unless PUBLIC_BASE_URL is given as well.
ifneq ($(filter command environment,$(origin HOST) $(origin PORT)),)
export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
endif

.PHONY: install run serve test lint format bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"chatbot-auth needs Python 3.11 or newer, and $(PYTHON) is {v.major}.{v.minor}: name another one, e.g. make run PYTHON=python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	touch $@

install: $(VENV)/.installed

.env: | $(VENV)/.installed
	$(PY) -m config.envfile

run: install .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py setup_demo
	$(PY) manage.py setup_demo_flow
	$(MAKE) --no-print-directory serve

# gthread workers: the demo flow's API steps call this same server over HTTP,
# so it must answer requests while another request of its own is waiting.
serve:
	$(VENV)/bin/gunicorn config.wsgi:application --bind $(HOST):$(PORT) \
		--workers $(WORKERS) --threads $(THREADS) --worker-class gthread \
		--access-logfile - --timeout 60

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
