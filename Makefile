# `make run` starts the dashboard on the embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PostgreSQL server the storage tests create their fresh database on.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export TEST_DATABASE_URL

.PHONY: run test test-fast lint bench sample demo clean

# Parallel test workers, each with its own PostgreSQL database and ports; most tests wait
# on processes and servers, so more workers than cores (on 2 cores: 9:12 with 5 workers,
# 9:32 with 4, the same hour; 9:30 in a later run with 5).
TEST_WORKERS ?= 5

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Bound to this machine: on a first start the page that creates the administrator is
# the local user's. `make run ADDRESS=0.0.0.0` serves the network once accounts exist.
ADDRESS ?= 127.0.0.1

run: $(STAMP)
	$(BIN)/streamlit run app/dashboard/server.py --server.address $(ADDRESS)

# The OpenID Connect provider the single sign-on test signs in at (npm's oidc-provider).
OIDC := tests/oidc/node_modules/.installed
$(OIDC): tests/oidc/package.json tests/oidc/package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --prefix tests/oidc && touch $@; \
	else echo "npm is missing: the single sign-on test says so (apt-get install npm)"; fi

# Python may run with PYTHONDONTWRITEBYTECODE set (CI's machine sets it): then nothing
# writes the project's bytecode, and every process the tests start (hundreds of `vigil`
# runs) compiled about 100 of its files again, 0.2 s a start. Compiled once here, they are
# read (only changed files are compiled again).
BYTECODE := $(BIN)/python -m compileall -q -x node_modules app detection storage alerts sample_data bench tests

test: $(STAMP) $(OIDC)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BYTECODE)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

# The inner loop, about 90 s on two cores: on SQLite only, and without the tests marked
# slow (those that start processes, servers or browsers, or score big files). These keep
# the cores busy, so one worker fewer. `make test` runs everything.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BYTECODE)
	$(BIN)/pytest -n 3 --dist worksteal -m "not slow and not postgres"

bench: $(STAMP)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/storing.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/scale.py

# A live stream to watch: the elevators sample replayed at 20 rows a second into
# `vigil stream --save --alert`, and the dashboard on its own port (DEMO_PORT), so that
# `make run` on 8501 and the demo run side by side; the Live page shows the stream.
DEMO_PORT ?= 8502
demo: $(STAMP)
	$(BIN)/vigil train sample_data/elevators.csv --profile sensor --activate | tail -n 1
	@echo "Streaming sample_data/elevators.csv at 20 rows/s: open http://localhost:$(DEMO_PORT)/live"
	$(BIN)/vigil replay sample_data/elevators.csv --rate 20 \
	  | $(BIN)/vigil stream - --model active --save --alert \
	    --source "demo-$$(date +%Y%m%d-%H%M%S)" --out /dev/null & \
	  pid=$$!; trap 'kill $$pid 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/streamlit run app/dashboard/server.py --server.headless true --server.address 127.0.0.1 \
	    --server.port $(DEMO_PORT)

sample: $(STAMP)
	$(BIN)/vigil sample

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
