# The two commands of the README: `make demo` (main job) and `make test` (test suite); both set up first.
# `make leaderboard` regenerates LEADERBOARD.md (and leaderboard/: results.json, index.html, plots) from DATA.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint leaderboard

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	@$(BIN)/emozoo demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

DATA ?= ../shared/data
LEADERBOARD_MODELS ?= librosa-svc librosa-rf librosa-logreg logmel-cnn wav2vec2 ensemble
# sized for a 2-core CPU (the whole run in about 20 minutes); wav2vec2 uses the tiny randomly initialised
# backbone because this machine cannot download pretrained ones (give backbone=DIR for a real one)
# the ensemble row (docs/ensemble.md): the mean of logreg and svc, timed next to them
LEADERBOARD_PARAMS ?= --param logmel-cnn:epochs=6 --param wav2vec2:backbone=tiny --param wav2vec2:epochs=2 \
	--param ensemble:members=librosa-logreg,librosa-svc
# one thread per model while measured: comparable across runtimes, and stable on a small shared machine
LEADERBOARD_FLAGS ?= --threads 1

leaderboard: setup
	$(BIN)/emozoo bench $(LEADERBOARD_MODELS) --data $(DATA)/emodb --data $(DATA)/ravdess $(LEADERBOARD_PARAMS) $(LEADERBOARD_FLAGS) \
		--runtime native,onnx,int8 --device cpu,cuda --out leaderboard/results.json --work-dir build/leaderboard-models
	$(BIN)/emozoo leaderboard leaderboard/results.json -o leaderboard --markdown LEADERBOARD.md --command "make leaderboard"
