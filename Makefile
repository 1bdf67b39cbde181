# Every target refreshes .venv from the pinned set in constraints.txt first, so each one works on a
# fresh machine that has only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-quick lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/leadsync demo

# Four test processes on two cores: many tests wait on the sandbox's latency, rate limits and
# schedules, so the cores would sit idle with two. Tests are handed out two at a time (load, not
# worksteal), the long ones first (tests/conftest.py), so none runs alone at the end. The CLI calls
# fork from a preloaded process (tests/forkcli.py).
test: $(STAMP)
	$(BIN)/python -m pytest -n 4 --dist load --maxschedchunk 2 -q

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
