# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.luodi-installed

.PHONY: demo test lint format install clean-cache models

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a looser resolve pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# ray[serve]: `luodi serve --ray` and its single-node test (tests/serve/test_ray_serve.py)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

install: $(STAMP)

# The assistant end to end on sample queries, from the int8 ONNX release set in release/ (no training).
demo: $(STAMP)
	$(BIN)/luodi demo

# Rebuild release/ from ../shared/data: train the source models (the commands in each release/*/CARD.md;
# ~70 min on 2 cores), then trim, export, fuse, int8, measure and write the cards. Not run in CI.
LUODI = HF_HUB_OFFLINE=1 $(BIN)/luodi
models: $(STAMP)
	$(LUODI) train breaking --data assistant --layers 3 --seed 1 --epochs 2 --lr 2e-4 --batch-size 16 --threads 2
	$(LUODI) train segment --variant unified --layers 3 --max-chars 1200000 --epochs 1 --threads 2 \
		--learning-rate 3e-4 --dev-sentences 200
	$(LUODI) train intent --model fused --data assistant --layers 3 --epochs 3 --batch-size 32 \
		--learning-rate 2e-4 --threads 1
	$(LUODI) release --out release --limit 500 --threads 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collects no test: that fails `make test` (and CI) on purpose.
test: lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q
