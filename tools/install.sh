#!/usr/bin/env bash
# One-command install of the MMDetection 3.3 stack on current PyTorch (`make install`).
#
#   make install                          # creates .venv with the pinned stack
#   make install PYTHON=/path/to/python   # installs into that interpreter's environment and
#                                         # keeps the torch already there
#   make install WHEELHOUSE=DIR           # offline: everything from a folder made by
#                                         # `make wheelhouse` (tools/wheelhouse.py), no index
#   make install CUDA=1                   # mmcv's CUDA ops too, on a machine without a GPU:
#                                         # for TORCH_CUDA_ARCH_LIST (default 8.0;9.0), with
#                                         # CUDA_HOME's toolkit or else the CUDA compiler from
#                                         # PyPI that matches torch.version.cuda
#
# Versions come from requirements/constraints.txt (the one place they are pinned).
# mmcv 2.1.0 (the newest mmcv mmdet 3.3 accepts) is source-only on PyPI: it is built here, with
# its C++ standard raised to what the installed torch compiles extensions with, and the wheel is
# cached under $RESNEXT_DET_CACHE (default ~/.cache/resnext_det), keyed by
# mmcv/torch/python/CUDA, so a second install skips the build.
#
# A failure stops with one line naming the cause and the log path; an environment this script
# created is removed again, so no half-installed .venv is left behind.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PINS="$ROOT/requirements/constraints.txt"
VENV=${VENV:-$ROOT/.venv}
USER_PYTHON=${PYTHON:-}
WHEELHOUSE=${WHEELHOUSE:-}
CACHE=${RESNEXT_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnext_det}
LOG_DIR="$CACHE/logs"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/install-$(date +%Y%m%d-%H%M%S).log"
START=$(date +%s)

say() { echo "[install] $*"; }
die() { echo "[install] ERROR: $*" >&2; echo "[install] full log: $LOG" >&2; exit 1; }
pin() { sed -n "s/^$1==//p" "$PINS"; }

created_env=""
finished=""
cleanup() {
    if [ -z "$finished" ] && [ -n "$created_env" ] && [ -d "$created_env" ]; then
        rm -rf "$created_env"
        echo "[install] removed the partial environment $created_env" >&2
    fi
}
trap cleanup EXIT

# Where packages come from: the configured indexes, or only the wheelhouse (no network). In the
# environment, not on pip's command line, so that pip's own subprocesses (build environments,
# setuptools' develop step) use the wheelhouse too.
if [ -n "$WHEELHOUSE" ]; then
    [ -f "$WHEELHOUSE/wheelhouse.json" ] \
        || die "WHEELHOUSE=$WHEELHOUSE is not a wheelhouse (no wheelhouse.json): make one with 'make wheelhouse WHEELHOUSE=$WHEELHOUSE' on a machine with network"
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELHOUSE"
fi
# pip prints a warning for every local index directory that lacks a package; keep the log readable.
pip_q() { "$PY" -m pip "$@" >>"$LOG" 2>&1; }

# --- 1. the interpreter and its environment --------------------------------------------------
if [ -n "$USER_PYTHON" ]; then
    command -v "$USER_PYTHON" >/dev/null || die "PYTHON=$USER_PYTHON is not an executable python"
    PY=$(command -v "$USER_PYTHON")
    STAMP=$("$PY" -c 'import sys; print(sys.prefix)')/.resnext_det-install
else
    PY="$VENV/bin/python"
    STAMP="$VENV/.resnext_det-install"
fi
want_stamp=$(cat "$PINS" "$ROOT/setup.py" "$0" | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
    && "$PY" -c 'import mmcv.ops, mmdet, resnext_det' >/dev/null 2>&1 \
    && { [ "${CUDA:-}" != 1 ] || "$PY" -c 'from mmcv.ops import get_compiling_cuda_version as v
assert v() not in ("not available", "")' >/dev/null 2>&1; }; then  # CUDA=1 asks for CUDA ops
    say "already installed in $("$PY" -c 'import sys; print(sys.prefix)') (pins unchanged)"
    finished=1
    exit 0
fi

if [ -z "$USER_PYTHON" ]; then
    base_python=${BASE_PYTHON:-python3}
    command -v "$base_python" >/dev/null || die "no python3 on PATH (set BASE_PYTHON=/path/to/python3)"
    if [ -d "$VENV" ]; then
        say "re-creating $VENV (pins or setup.py changed, or the last install did not finish)"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $("$base_python" --version 2>&1)"
    created_env="$VENV"
    "$base_python" -m venv "$VENV" >>"$LOG" 2>&1 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null \
    || die "$("$PY" --version 2>&1) is too old: MMDetection 3.3 needs Python >= 3.9"
if [ -n "$WHEELHOUSE" ]; then
    read -r WH_PY WH_KEPT < <("$PY" - "$WHEELHOUSE/wheelhouse.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print(m['python_version'], ','.join(m['kept']) or '-')
EOF
) || die "$WHEELHOUSE/wheelhouse.json is unreadable: make the wheelhouse again"
    here_py=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    [ "$WH_PY" = "$here_py" ] \
        || die "the wheelhouse $WHEELHOUSE is for Python $WH_PY, this interpreter is $here_py: make one for it (tools/wheelhouse.py --python-version $here_py)"
    say "installing offline from the wheelhouse $WHEELHOUSE (Python $WH_PY; kept by the target: $WH_KEPT)"
fi

# --- 2. torch ---------------------------------------------------------------------------------
# What the environment keeps as it is gets no pin: a user's own torch, and what a wheelhouse
# left out as the target's own (--keep), at the target's version.
CONSTRAINTS="$LOG_DIR/constraints-$$.txt"
unpinned=$([ -n "${WH_KEPT:-}" ] && [ "$WH_KEPT" != - ] && echo "$WH_KEPT" | sed 's/,/|/g' || true)
if [ -n "$USER_PYTHON" ] && "$PY" -c 'import torch' >/dev/null 2>&1; then
    say "using the torch already installed: $("$PY" -c 'import torch; print(torch.__version__)')"
    unpinned="torch|torchvision${unpinned:+|$unpinned}"
    installs_torch=""
else
    case ",${WH_KEPT:-}," in *,torch,*|*,torchvision,*)
        die "the wheelhouse $WHEELHOUSE leaves torch out (made with --keep torch): install into an environment that has it, make install PYTHON=/path/to/python WHEELHOUSE=$WHEELHOUSE" ;;
    esac
    installs_torch=1
fi
if [ -n "$unpinned" ]; then
    grep -v -i -E "^($unpinned)==" "$PINS" >"$CONSTRAINTS" || true
else
    cp "$PINS" "$CONSTRAINTS"
fi
trap 'rm -f "$CONSTRAINTS"; cleanup' EXIT
if [ -n "$installs_torch" ]; then
    say "installing torch $(pin torch) + torchvision $(pin torchvision)"
    pip_q install -c "$CONSTRAINTS" torch torchvision \
        || die "could not install torch $(pin torch) / torchvision $(pin torchvision) (see the log)"
fi
pip_q install -c "$CONSTRAINTS" setuptools wheel ninja \
    || die "could not install the build tools setuptools/wheel/ninja"
"$PY" -c 'import pkg_resources' >/dev/null 2>&1 \
    || die "setuptools $("$PY" -c 'import setuptools; print(setuptools.__version__)') has no pkg_resources, which mmcv's setup.py imports: pin setuptools < 81"

# --- 3. mmcv with compiled ops, from the wheel cache or built from source ---------------------
# CUDA=1 without CUDA_HOME: the CUDA compiler for torch's CUDA version from NVIDIA's PyPI wheels,
# laid out as a toolkit under the cache (nvcc with its crt/nvvm/CCCL headers and cudart), plus
# the headers of the CUDA libraries torch's wheel brought (cusparse, cublas, ...: torch's own
# headers include them). Prints the toolkit's path.
cuda_toolchain() {
    local ver=$1 libs_include=$2 major=${1%%.*}
    local dir="$CACHE/cuda-$1"
    local home="$dir/home"
    [ "$major" -ge 13 ] \
        || die "CUDA=1 takes the compiler from PyPI's CUDA 13 wheels, and torch is built for CUDA $ver: set CUDA_HOME to a CUDA $ver toolkit"
    [ "$libs_include" != - ] \
        || die "CUDA=1: torch's CUDA library headers (nvidia/cu$major/include/cusparse.h) are not installed beside torch"
    if [ ! -x "$home/bin/nvcc" ]; then
        echo "[install] CUDA=1: installing the CUDA $ver compiler from PyPI into $dir (about 100 MB)" >&2
        rm -rf "$dir"
        pip_q install --no-deps --target "$dir/pkgs" "nvidia-cuda-nvcc==$ver.*" \
            "nvidia-cuda-crt==$ver.*" "nvidia-nvvm==$ver.*" "nvidia-cuda-cccl==$ver.*" \
            "nvidia-cuda-runtime==$ver.*" \
            || die "could not install the CUDA $ver compiler from PyPI (nvidia-cuda-nvcc==$ver.*)"
        cp -rs "$dir/pkgs/nvidia/cu$major" "$home.partial"
        cp -rsn "$libs_include/." "$home.partial/include/"
        ln -s lib "$home.partial/lib64"  # where torch's extension builder looks for cudart
        ln -sf "libcudart.so.$major" "$home.partial/lib/libcudart.so"
        mv "$home.partial" "$home"
    fi
    echo "$home"
}

read -r TORCH_VER PY_TAG CUDA_OK CXX_STD < <("$PY" - <<'EOF'
import inspect, re, sys
import torch, torch.utils.cpp_extension as ext
# torch compiles its own extensions with the newest -std it names; mmcv must match it.
std = max(int(s) for s in re.findall(r"-std=c\+\+(\d+)", inspect.getsource(ext)))
print(torch.__version__, f"cp{sys.version_info.major}{sys.version_info.minor}",
      int(torch.cuda.is_available() and ext.CUDA_HOME is not None), std)
EOF
) || die "torch does not import in $PY (see the log)"
MMCV_VER=$(pin mmcv)
ARCH=""
if [ "${CUDA:-}" = 1 ] && [ "$CUDA_OK" != 1 ]; then
    read -r TORCH_CUDA LIBS_INCLUDE < <("$PY" - <<'EOF'
import os, torch
version, include = torch.version.cuda or '-', '-'
try:
    import nvidia  # the CUDA libraries torch's wheel depends on
    for root in nvidia.__path__:
        folder = os.path.join(root, f"cu{version.split('.')[0]}", 'include')
        if os.path.isfile(os.path.join(folder, 'cusparse.h')):
            include = folder
except ImportError:
    pass
print(version, include)
EOF
)
    [ "$TORCH_CUDA" != - ] \
        || die "CUDA=1: torch $TORCH_VER is a CPU build, whose extensions cannot have CUDA ops"
    if [ -n "${CUDA_HOME:-}" ]; then
        [ -x "$CUDA_HOME/bin/nvcc" ] || die "CUDA=1: CUDA_HOME=$CUDA_HOME has no bin/nvcc"
    else
        CUDA_HOME=$(cuda_toolchain "$TORCH_CUDA" "$LIBS_INCLUDE") || exit 1
    fi
    export CUDA_HOME
    say "CUDA=1: CUDA ops for torch's CUDA $TORCH_CUDA with the toolkit in $CUDA_HOME"
    ARCH=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
    CUDA_OK=1
fi
if [ "$CUDA_OK" = 1 ] && [ -z "$ARCH" ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    # on a GPU node: this GPU's architecture, or a wheel already built (CUDA=1, elsewhere) for
    # several, this one among them
    DEVICE_ARCH=$("$PY" -c 'import torch; c=torch.cuda.get_device_capability(); print(f"{c[0]}.{c[1]}")')
    for built in "$CACHE"/wheels/mmcv-"$MMCV_VER-torch-$TORCH_VER-$PY_TAG"-cuda-*/mmcv-*.whl \
                 ${WHEELHOUSE:+"$WHEELHOUSE"/mmcv-built/mmcv-"$MMCV_VER-torch-$TORCH_VER-$PY_TAG"-cuda-*/mmcv-*.whl}; do
        archs=$(basename "$(dirname "$built")"); archs=${archs##*-cuda-}
        case "_${archs}_" in *"_${DEVICE_ARCH}_"*) ARCH=$(echo "$archs" | tr _ ';'); break ;; esac
    done
    ARCH=${ARCH:-$DEVICE_ARCH}
fi
if [ "$CUDA_OK" = 1 ]; then
    ARCH=${ARCH:-$TORCH_CUDA_ARCH_LIST}
    FLAVOUR="cuda-$(echo "$ARCH" | tr ' ;' '__')"
else
    FLAVOUR=cpu
fi
KEY="mmcv-$MMCV_VER-torch-$TORCH_VER-$PY_TAG-$FLAVOUR"
WHEEL_DIR="$CACHE/wheels/$KEY"
WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -1 || true)
if [ -z "$WHEEL" ] && [ -n "$WHEELHOUSE" ]; then
    WHEEL=$(ls "$WHEELHOUSE/mmcv-built/$KEY"/mmcv-*.whl 2>/dev/null | head -1 || true)
fi
if [ -n "$WHEEL" ]; then
    say "mmcv $MMCV_VER: using the cached wheel $WHEEL"
else
    CXX_BIN=${CXX:-c++}
    command -v "$CXX_BIN" >/dev/null \
        || die "no C++ compiler ($CXX_BIN) for building mmcv's ops (Debian: apt-get install g++)"
    SRC=$(mktemp -d "$CACHE/mmcv-src-XXXX")
    trap 'rm -rf "$SRC" "$CONSTRAINTS"; cleanup' EXIT
    if [ -n "$WHEELHOUSE" ]; then
        cp "$WHEELHOUSE/mmcv-$MMCV_VER.tar.gz" "$SRC/" 2>/dev/null \
            || die "the wheelhouse $WHEELHOUSE has no mmcv-$MMCV_VER.tar.gz: make it again with this checkout's constraints"
    else
        pip_q download --no-deps --no-binary mmcv --no-build-isolation -d "$SRC" "mmcv==$MMCV_VER" \
            || die "could not download the mmcv $MMCV_VER source from PyPI"
    fi
    tar xzf "$SRC/mmcv-$MMCV_VER.tar.gz" -C "$SRC"
    sed -i "s/-std=c++1[47]/-std=c++$CXX_STD/g" "$SRC/mmcv-$MMCV_VER/setup.py"
    build_env=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    if [ "$CUDA_OK" = 1 ]; then
        build_env+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$ARCH")
        [ -n "${CUDA_HOME:-}" ] && build_env+=("CUDA_HOME=$CUDA_HOME" "PATH=$CUDA_HOME/bin:$PATH")
        eta="about 5 min on 16 cores, 45 min on 2"
    else
        eta="about 13 min on 2 cores"
    fi
    BUILD_LOG="$LOG_DIR/mmcv-build-$KEY.log"
    say "building mmcv $MMCV_VER with compiled ops ($FLAVOUR, C++$CXX_STD) from source: $eta, once per machine; log: $BUILD_LOG"
    ( cd "$SRC" && env "${build_env[@]}" "$PY" -m pip wheel --no-build-isolation --no-deps \
        -w "$SRC/dist" "./mmcv-$MMCV_VER" ) >"$BUILD_LOG" 2>&1 &
    build_pid=$!
    while kill -0 "$build_pid" 2>/dev/null; do sleep 60; kill -0 "$build_pid" 2>/dev/null && printf '.'; done; echo
    if ! wait "$build_pid"; then
        if grep -q "No module named 'pkg_resources'" "$BUILD_LOG"; then cause="setuptools without pkg_resources (pin setuptools < 81)"
        elif grep -qE "C\+\+(17|20) or later|requires.*-std=c\+\+" "$BUILD_LOG"; then cause="C++ standard refused by the torch headers"
        elif grep -qE "(c\+\+|g\+\+|gcc|nvcc)[^ ]*: (not found|No such file)|command '.*' failed: No such file" "$BUILD_LOG"; then cause="compiler not found"
        elif grep -qE "No module named 'torch'" "$BUILD_LOG"; then cause="torch not importable during the build"
        else cause="compile error"; fi
        tail -n 15 "$BUILD_LOG" >>"$LOG"
        LOG="$BUILD_LOG"
        die "building mmcv $MMCV_VER failed: $cause"
    fi
    mkdir -p "$WHEEL_DIR"
    built=$(ls "$SRC"/dist/mmcv-*.whl)
    # copy then rename, so a killed install never leaves a half-written wheel in the cache
    cp "$built" "$WHEEL_DIR/.partial" && mv "$WHEEL_DIR/.partial" "$WHEEL_DIR/$(basename "$built")"
    WHEEL="$WHEEL_DIR/$(basename "$built")"
    say "cached $WHEEL"
    # beside the wheelhouse too, so that a machine which starts bare can bring it back and skip
    # the build next time (not fatal: the wheelhouse may be read-only)
    if [ -n "$WHEELHOUSE" ] && mkdir -p "$WHEELHOUSE/mmcv-built/$KEY" 2>/dev/null \
        && cp "$built" "$WHEELHOUSE/mmcv-built/$KEY/.partial" 2>/dev/null; then
        mv "$WHEELHOUSE/mmcv-built/$KEY/.partial" "$WHEELHOUSE/mmcv-built/$KEY/$(basename "$built")"
        say "and in the wheelhouse: $WHEELHOUSE/mmcv-built/$KEY/$(basename "$built")"
    fi
fi

# --- 4. the rest of the stack and the package, in one pip call ----------------------------------
# One resolver run: if anything is missing, pip stops before installing any of it.
say "installing mmengine $(pin mmengine), mmdet $(pin mmdet), pycocotools and resnext_det (editable)"
pip_q install -c "$CONSTRAINTS" "$WHEEL" mmengine mmdet pycocotools opencv-python numpy \
    -e "$ROOT[tests,lint]" || die "pip could not install the stack (see the log)"

"$PY" - >>"$LOG" 2>&1 <<'EOF' || die "the installed stack does not import: mmcv.ops/mmdet/resnext_det (see the log)"
import mmcv, mmengine, mmdet, resnext_det
from mmcv.ops import RoIAlign, nms
print('ok', mmcv.__version__, mmengine.__version__, mmdet.__version__)
EOF
echo "$want_stamp" >"$STAMP"
finished=1
say "done in $(( $(date +%s) - START ))s: $("$PY" -c 'import sys; print(sys.prefix)')"
