# Seeing inside CNNs — the two commands of the README, and a few more.
#   make lab     create .venv if needed, install the course, open JupyterLab on the course map
#                (uploads up to 64 MiB reach the kernel, so ch.uploads can say a file is too big)
#   make test    same bootstrap, then every test (package tests + notebooks in quick mode)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.course-installed
PYTEST_ARGS ?=

.PHONY: install lab test test-package test-notebooks slides bench model evaluate deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[lab,test]"
	@touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) \
		--ServerApp.tornado_settings='{"websocket_max_message_size": 67108864}' notebooks/index.ipynb

# Every test: the package's tests, then every notebook run top to bottom by nbval in quick mode.
test: $(STAMP)
	COURSE_QUICK=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 $(PYTEST_ARGS)

test-package: $(STAMP)
	COURSE_QUICK=1 $(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	COURSE_QUICK=1 $(PY) -m pytest notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 $(PYTEST_ARGS)

# Rebuild the shipped weights (the only way they are made) and print their figures.
model: $(STAMP)
	$(PY) -m course_helpers.tools.train
	$(PY) -m course_helpers.tools.train --evaluate

evaluate: $(STAMP)
	$(PY) -m course_helpers.tools.train --evaluate

# Reveal.js decks that present offline, one per notebook, executed (quick mode by default) into
# slides/ with reveal.js copied beside them (open slides/NN_x.slides.html; S = speaker view).
SLIDES_QUICK ?= 1
slides: $(STAMP)
	COURSE_QUICK=$(SLIDES_QUICK) $(PY) -m course_helpers.tools.slides slides --execute

# Speed and memory measured side by side; writes benchmarks/RESULTS.md.
bench: $(STAMP)
	$(PY) benchmarks/run.py

deps: $(STAMP)
	$(PY) -m course_helpers.tools.deps --write

clean:
	rm -rf build *.egg-info .pytest_cache slides test-artifacts
