# The one entry point for people, .ci/run and CircleCI: `make run` and `make test` set everything up first.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := .venv/bin
TRAIN_ARGS ?=
BENCH_ARGS ?=
LAB_PORT ?= 8888
LAB_ARGS ?=
# Use the machine's Python; never download one.
export UV_PYTHON_DOWNLOADS := never
# Compile the environment's bytecode once at install: every process of the test suite, the notebooks and the
# servers then imports from .pyc, even where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
export UV_COMPILE_BYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help setup hooks lab run train serve test check check-notebooks check-lock lint test-notebooks pytest \
        test-clock export clean-nbs docs bench image lock system-deps system-deps-tests

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

setup: $(UV) ## create .venv with every dependency (uv, from pyproject.toml)
	$(UV) sync --all-extras --python $(PYTHON) --quiet

# Per clone, not part of setup: git hooks and drivers are a person's choice for their clone (CI needs none), and
# a git worktree shares them with every other worktree of the repository.
hooks: setup ## once per clone: pre-commit cleans and exports on commit; notebooks merge and diff cell by cell
	$(BIN)/pre-commit install
	git config merge.jupyternotebook.name "nbdev's notebook merge"
	git config merge.jupyternotebook.driver "$(BIN)/nbdev-merge %O %A %B %P"
	git config diff.jupyternotebook.command "$(BIN)/nbdev-diff-driver"

# JUPYTER_PATH puts this environment's kernel first: a `python3` kernel installed elsewhere would import another
# copy of the package, or none, instead of the one `make export` just wrote.
lab: setup ## JupyterLab on http://localhost:8888 (LAB_PORT), opened on nbs/, saving cleans the notebook
	JUPYTER_CONFIG_PATH="$(CURDIR)/tools/jupyter" JUPYTER_PATH="$(CURDIR)/.venv/share/jupyter" \
	  $(BIN)/jupyter lab --ServerApp.port=$(LAB_PORT) $(LAB_ARGS)

run: train serve ## the main job: set up, train via papermill, then serve the page on localhost:5000

train: setup ## train and publish a model (extra options: TRAIN_ARGS="--max-depth 3")
	$(BIN)/iris-classifier train $(TRAIN_ARGS)

serve: setup ## serve the published model on localhost:5000
	$(BIN)/iris-classifier serve

test: setup check test-notebooks pytest test-clock ## the whole test suite

check: check-notebooks check-lock lint ## library equals the notebooks' export, notebooks clean, lock current

check-notebooks: setup
	$(BIN)/python tools/check_notebooks.py

check-lock: setup
	@$(UV) export --no-emit-project --no-dev --format requirements-txt --no-header --quiet | diff -u requirements.lock - \
	  || { echo "requirements.lock does not match pyproject.toml: run 'make lock' and commit it" >&2; exit 1; }

# Lines of at most 120 characters ([tool.ruff] in pyproject.toml), notebooks' code cells included. For now only
# the files of issue 21's first pass; it grows to the whole tree, and into `make check`, as the rest is wrapped.
lint: setup ## lines of at most 120 characters: notebooks, tools, ops, bench and tests (ruff), shell and make
	$(BIN)/ruff check
	@awk 'length > 120 { print FILENAME ":" FNR ": longer than 120 characters"; long = 1 } END { exit long }' \
	  Makefile .ci/run ops/*.sh

# In place of nbdev-test: the docs build runs every notebook as it does, and pytest checks the site it made
# rather than running the notebooks a second time.
test-notebooks: setup ## run every notebook (as nbdev-test does) and build the docs site the tests check
	$(BIN)/python tools/build_docs.py --test

pytest: setup
	$(BIN)/pytest

# The tests of what reads the clock (records, monitoring windows and --since, runs, prune-runs, history) once more
# under a clock that starts a few seconds before a new year's midnight and crosses it while they run, in a time
# zone fourteen hours ahead of UTC (libfaketime: `faketime`, from Debian's package of that name).
CLOCK_START ?= 2027-12-31 23:59:57 UTC
CLOCK_TZ ?= Pacific/Kiritimati
test-clock: setup ## the time-sensitive tests under a shifted clock that crosses midnight (needs faketime)
	@command -v faketime >/dev/null || \
		{ echo "test-clock needs faketime: run 'make system-deps' (Debian, as root)" >&2; exit 1; }
	TZ=$(CLOCK_TZ) faketime '$(CLOCK_START)' $(BIN)/pytest -p no:cacheprovider -m clock

export: setup ## regenerate iris_classifier/ from the notebooks, and the training and monitoring notebooks it ships
	$(BIN)/nbdev-export
	cp nbs/05_model_training.ipynb nbs/14_monitoring.ipynb iris_classifier/notebooks/

clean-nbs: setup ## clean notebooks the way the check expects: no outputs, no execution counts, no editor metadata
	$(BIN)/jupyter nbconvert --clear-output --inplace --log-level=WARN nbs/*.ipynb
	$(BIN)/nbdev-clean

docs: setup ## build the docs site (docs/_site) and README.md from the notebooks; no Quarto needed
	$(BIN)/python tools/build_docs.py

bench: setup ## serving benchmark on loopback (needs wrk; e.g. BENCH_ARGS="--against main")
	$(BIN)/python bench/serving.py $(BENCH_ARGS)

image: train ## build the container image with the freshly trained model (docker or podman)
	bash ops/build-image.sh iris-classifier:dev

lock: $(UV) ## re-export requirements.lock (hash-pinned, no index URLs) after changing dependencies
	$(UV) export --no-emit-project --no-dev --format requirements-txt --no-header --quiet -o requirements.lock

system-deps: system-deps-tests ## Debian, as root: system-deps-tests, and podman with a local base image (container)
	bash ops/install-container-tools.sh

# jq: ops/champion.sh, ops/deploy.sh and ops/retrain.sh read JSON with it (and the tests run them).
system-deps-tests: ## Debian, as root: the tests' tools (Chromium, wrk, Prometheus, promtool, faketime, shellcheck, jq)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core wrk faketime shellcheck jq
	# The tests start their own Prometheus on loopback: no node exporter, and Debian's service (which would
	# listen on every interface) stopped where systemd runs it.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
	if [ -d /run/systemd/system ]; then systemctl disable --now prometheus; fi
