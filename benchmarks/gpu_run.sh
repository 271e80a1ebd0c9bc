#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md in one call (a lent GPU machine with jax[cuda], flax, optax, torch,
# transformers; run from the repository root, no install). Logs go to $OUT (default ./gpu-logs).
#
#     bash benchmarks/gpu_run.sh                    # issue 16's figures: train step, extraction, fidelity
#     bash benchmarks/gpu_run.sh all                # also the sweep, its kernels and the ViPER step at
#                                                   # batch 32 and 64 (limits sum to 1,065 s)
#     bash benchmarks/gpu_run.sh sweep train_step   # some
#
# The default's limits sum to 530 s, so it fits one device call (600 s) with the machine's start-up left
# over from a 15-minute device budget; `all` needs two calls (e.g. `sweep kernels batches` then the default).
#
# fidelity: our hand-built chat-model inputs against transformers' own processors, Qwen2.5-Omni's (video,
# audio, both) included (needs torchvision, which a CUDA install has; tests/extract/test_processor_fidelity.py,
# run without pytest).
#
# Each benchmark has its own time limit, so one that hangs or fails leaves the others' figures.
set -u
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# JAX takes half the card, not 75 %: train_step.py runs PyTorch in the same process.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.5}
PY=${PY:-python3}
WANT=${*:-train_step extract fidelity}
[[ "$WANT" == all ]] && WANT="sweep kernels batches train_step fidelity extract"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, report the exit status
    local name=$1 limit=$2
    shift 2
    [[ " $WANT " == *" $name "* ]] || return 0
    echo "=== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "--- $name: exit $rc after $((SECONDS - t0)) s"
    tail -n "${TAIL:-25}" "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
$PY - <<'PYEOF'
import importlib, platform
print("python", platform.python_version(), *(f"{m} {importlib.import_module(m).__version__}" for m in
      ("jax", "flax", "optax", "torch", "transformers", "numpy")))
import jax; print("jax devices:", jax.devices())
PYEOF

step sweep 150 $PY benchmarks/sweep.py --size gpu --flat-check
step kernels 45 $PY benchmarks/sweep.py --kernels
step batches 150 $PY benchmarks/train_step.py --size paper --precision bfloat16 --skip-torch --steps 10 --rounds 2 \
    --batch-sizes 32,64
step train_step 200 $PY benchmarks/train_step.py --size paper --precision bfloat16 --steps 10 --rounds 3 --profile 3
step extract 240 $PY benchmarks/extract_throughput.py --size full --device cuda --json-out "$OUT/extract.json"
step fidelity 90 $PY tests/extract/test_processor_fidelity.py
