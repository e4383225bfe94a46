#!/usr/bin/env bash
# Issue 4's GPU runs, prepared for a session that is lent a GPU: a drawn task has 15 minutes of
# device time (the machine's start included), 10 minutes a call, and no network there. Two calls:
#
#   benchmarks/gpu_session.sh learning   the learning benchmark's default preset trained on the
#                                        GPU for LEARN_MIN minutes (3), scored on the same
#                                        held-out synthetic songs as the README's CPU runs
#   benchmarks/gpu_session.sh starter    a starter trained there from scratch on STARTER_SONGS
#                                        synthetic songs (60) for STARTER_MIN minutes (3), scored
#                                        by the same benchmark on EVAL_SONGS held-out songs (4)
#
# Each takes ~5-6 minutes there (songs, data set, training, greedy decoding on its 16 cores).
# The machine has torch, torchaudio, numpy, scipy, click, pillow and safetensors; kiai's other
# dependencies travel as wheels in .whl/ (ignored by git). Here, once:
#
#   echo /.whl/ >> .git/info/exclude && benchmarks/gpu_session.sh --fetch-wheels
#
# then each device call: command `benchmarks/gpu_session.sh learning` (then `starter`), carry
# [".whl"], timeout_s 600. Logs, and the GPU starter's weights, come back under $OUT. The CPU
# runs to compare with: the README's learning table (10 min: F1 0.791, 30 min: 0.828) and the
# shipped starter (0.952). A dry run here (a minute of CPU): DEVICE=cpu LEARN_MIN=0.5
# STARTER_MIN=0.5 STARTER_SONGS=2 LEARN_SONGS=2 EVAL_SONGS=1 WORKERS=0 PYTHON=.venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 websockets==17.4 watchdog==7.1.1
        rosu-pp-py==4.0.2)

what="${1:-}"
if [[ "$what" == "--fetch-wheels" ]]; then
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
            -d .whl "$wheel"
    done
    ls -l .whl
    exit 0
fi
if [[ "$what" != learning && "$what" != starter ]]; then
    echo "usage: $0 learning|starter|--fetch-wheels" >&2
    exit 2
fi

PYTHON="${PYTHON:-python3}"  # the device's python3 holds torch; here: PYTHON=.venv/bin/python
export PYTHONPATH="$PWD"
if ! "$PYTHON" -c "import soundfile, rosu_pp_py, websockets, watchdog" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1
out="${OUT:-build/gpu_session}"
work="${GPU_WORK:-/tmp/kiai-gpu}"
mkdir -p "$out" "$work"
LEARN_MIN="${LEARN_MIN:-3}" STARTER_MIN="${STARTER_MIN:-3}" STARTER_SONGS="${STARTER_SONGS:-60}"
WORKERS="${WORKERS:-6}" DEVICE="${DEVICE:-cuda}" LEARN_SONGS="${LEARN_SONGS:-24}"
EVAL_SONGS="${EVAL_SONGS:-4}"
(nvidia-smi --query-gpu=name,memory.total --format=csv || true) | tee "$out/machine.txt"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$out/machine.txt"

case "$what" in
    learning)
        start=$SECONDS
        "$PYTHON" benchmarks/learning.py --presets default --budget-min "$LEARN_MIN" \
            --device "$DEVICE" --workers "$WORKERS" --train-songs "$LEARN_SONGS" \
            --workdir "$work/learn" 2>&1 | tee "$out/learning.log"
        echo "learning benchmark: $((SECONDS - start)) s" | tee -a "$out/learning.log"
        ;;
    starter)
        start=$SECONDS
        "$PYTHON" -c "from companion.cli import main; main()" build-starter \
            --work "$work/starter" --songs "$STARTER_SONGS" --duration 60 \
            --minutes "$STARTER_MIN" --coord-weight 0.2 --workers "$WORKERS" --seed 1 \
            --out "$out/starter" 2>&1 | tee "$out/starter.log"
        echo "starter: $((SECONDS - start)) s" | tee -a "$out/starter.log"
        grep -h '"step"' "$work/starter/run/metrics.jsonl" | tail -n 3 >> "$out/starter.log"
        "$PYTHON" benchmarks/learning.py --evaluate "$out/starter" --held-out "$EVAL_SONGS" \
            --workdir "$work/eval" 2>&1 | tee -a "$out/starter.log"
        ;;
esac
