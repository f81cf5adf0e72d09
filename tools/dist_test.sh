#!/usr/bin/env bash
# Multi-GPU evaluation with torchrun, mmdet's interface and env vars:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
# PYTHON: the interpreter to run (default: python on PATH)
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# torchrun (same options), run by tools/dist_launch.py: when a rank dies, hangs or is stopped the
# job ends with one `error:` line naming it (and, training, the checkpoint to resume from); the
# collective timeout is the config's env_cfg.dist_cfg.timeout

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"${PYTHON:-python}" "$ROOT/tools/dist_launch.py" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
