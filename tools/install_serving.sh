#!/bin/sh
# The lean serving install (README "A lean serving install", docs/serving_install.md): a new virtual
# environment with holotune's base dependencies (ONNX Runtime, OpenCV, FastAPI; no torch, no training
# stack) and the registry extra (MLflow's lean client, for models:/ URIs and the service's alias
# following), pinned by requirements.lock, plus the stock-models wheel that `holotune models package`
# builds on a full install.
#
# The Dockerfile's serve stage and tests/test_lean_install.py both run this script: the image and
# the test install the same way (holotune.stock_models.SERVING_INSTALL names it).
#
#   tools/install_serving.sh VENV PROJECT WHEEL_DIR
#
#   VENV       the environment to create
#   PROJECT    the holotune source tree (pyproject.toml, README.md, requirements.lock, src/)
#   WHEEL_DIR  the folder holding one holotune_stock_models-*.whl
#   $PYTHON    the interpreter that creates VENV (default python3; holotune needs 3.11)
set -eu
if [ "$#" -ne 3 ]; then
    echo "usage: $0 VENV PROJECT WHEEL_DIR" >&2
    exit 2
fi
venv=$1
project=$2
wheels=$3
set -- "$wheels"/holotune_stock_models-*.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "$0: expected one holotune_stock_models-*.whl in $wheels, found: $*" >&2
    exit 2
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --constraint "$project/requirements.lock" \
    "$project[registry]" "$1"
