# The two commands a newcomer needs: `make demo` and `make test`.
# Both create the virtual environment and install the project on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench lock cloudformation serve-sandbox iam-policy clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,sandbox]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/amibot demo

# Two workers (pytest-xdist), a test file per worker at a time (--dist loadfile: a
# file's module-scoped servers start once). Each worker has its own sandbox, ports and
# PostgreSQL cluster. `$(BIN)/python -m pytest` alone runs in one process.
TEST_WORKERS ?= 2
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Every benchmark beside its baseline; writes bench/results.json and BENCHMARKS.md.
bench: $(BIN)/.installed
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/option_loads.py
	$(BIN)/python bench/store_replicas.py
	$(BIN)/python bench/poll_distribution.py

# The Docker image's dependency lock (versions and hashes), from pyproject.toml, with the
# build backend (setuptools: the image builds the project with --no-build-isolation).
lock:
	$(PYTHON) -m venv /tmp/amibot-piptools && /tmp/amibot-piptools/bin/pip install --quiet pip-tools
	/tmp/amibot-piptools/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras --all-build-deps \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

# The CloudFormation templates, generated from the actions' permissions.
cloudformation: $(BIN)/.installed
	$(BIN)/amibot iam-policy --format cloudformation --out deploy/cloudformation/

serve-sandbox: $(BIN)/.installed
	$(BIN)/amibot serve --sandbox

iam-policy: $(BIN)/.installed
	$(BIN)/amibot iam-policy

clean:
	rm -rf $(VENV) *.egg-info build
