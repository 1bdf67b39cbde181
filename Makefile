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
# schedules, so with fewer the cores sit idle. Measured back to back on one machine (2026-12-06, the
# same code): 3 processes 443 s, 4 processes 404 s, 5 processes 393 s, with 572, 581 and 591 s of user
# CPU. Four keeps most of the gain with less contention for the tests that time a stop. worksteal
# first gives each process a block of the collection; each block opens with its share of the long
# tests (tests/conftest.py), so none is left running alone at the end. The CLI calls fork from a
# preloaded process (tests/forkcli.py).
test: $(STAMP)
	$(BIN)/python -m pytest -n 4 --dist worksteal -q

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
