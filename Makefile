# The two commands a newcomer needs: `make demo` and `make test`.
# Both create the virtual environment and install the project on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench serve-sandbox iam-policy clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,sandbox]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/amibot demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/poll_batching.py
	$(BIN)/python bench/poll_distribution.py

serve-sandbox: $(BIN)/.installed
	$(BIN)/amibot serve --sandbox

iam-policy: $(BIN)/.installed
	$(BIN)/amibot iam-policy

clean:
	rm -rf $(VENV) *.egg-info
