# turnout: every task a user or CI runs. `make run` serves the gateway, `make test` runs the suite;
# both create .venv and install what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install system-deps run demo ingest test test-fast lint format bench eval train compose-check clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: docker-compose v1 validates docker-compose.yml (no engine needed);
# redis-server backs the shared rate limiter (the test session starts its own on a free port).
# chromium and chromium-driver run the admin page in a headless browser (tests/test_admin_page.py).
system-deps:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)) ; \
	  else echo "note: install redis-server (apt-get install redis-server) for the Redis limiter tests"; fi; \
	fi
	@if ! command -v docker-compose >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq docker-compose >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null)) ; \
	  else echo "note: install docker-compose (apt-get install docker-compose) to validate docker-compose.yml"; fi; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)) ; \
	  else echo "note: install chromium and chromium-driver (apt-get install chromium chromium-driver) for the admin page test"; fi; \
	fi

# The main job: ingest the sample documents (incremental: a rerun only touches what changed), then serve.
DOCS ?= ingest/samples

run: install
	$(BIN)/turnout ingest $(DOCS)
	$(BIN)/turnout serve

demo: install
	$(BIN)/turnout ingest $(DOCS)
	$(BIN)/turnout serve --emulators

ingest: install
	$(BIN)/turnout ingest $(DOCS)

# The README's test command, and all that CI runs: lint first (ruff, formatting, mypy), then every test.
test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router rag ingest evals
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router rag ingest evals

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/turnout bench classify
	$(BIN)/turnout bench limits
	$(BIN)/turnout bench db
	$(BIN)/turnout bench drift
	$(BIN)/turnout bench gateway

# Offline eval suites on the public data (TURNOUT_DATA_DIR, else ../shared/data, else downloaded to a
# cache): each writes evals/runs/<suite>-<time>/ (metrics.json, report.md, plots).
eval: install
	$(BIN)/turnout eval evals/suites/routing.yaml
	$(BIN)/turnout eval evals/suites/pii.yaml
	$(BIN)/turnout eval evals/suites/retrieval.yaml
	$(BIN)/turnout eval evals/suites/e2e.yaml

# Retrain the capability classifier (writes router/signals/data/capability.npz).
train: install
	$(BIN)/python -m evals.training.train

compose-check: system-deps
	TURNOUT_ADMIN_KEY=check docker-compose -f docker-compose.yml config --quiet
	TURNOUT_ADMIN_KEY=check docker-compose -f docker-compose.yml --profile gpu config --quiet

clean:
	rm -rf $(VENV) .turnout .pytest_cache .mypy_cache .ruff_cache
