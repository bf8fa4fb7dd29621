#!/usr/bin/env bash
# One GPU session for issues 28 and 33 as ONE command of at most SESSION_MINUTES (9) minutes:
#
#   1. the machine: torch, the GPU, ml_collections (installed from carried .whl/ wheels when missing);
#   2. GPU_TESTS=1: the CUDA tests of the speed switches (CUDA graphs equal to eager draw for draw; fp32 / tf32 / bf16
#      on CUDA; the auto batch), and with carried fixtures (runs/fixtures/) the official fixture tests on CUDA in
#      fp32 (1e-5) and tf32 (1e-3, PDS_TEST_PRECISION=tf32);
#   3. trains Model C64 (configs/ve/deadleaves64_ncsnpp.py, --data deadleaves) for a fixed wall time
#      (main.py --mode train --max_minutes): the time left after the tests, minus shipping and BENCH_MINUTES; a
#      carried $WORKDIR with checkpoints-meta/latest.pth is resumed exactly;
#   4. ships the run into $OUT/$SHIP/ (c64/) with scripts/ship_checkpoint.py: checkpoint.pth (EMA weights, for
#      sampling), checkpoints-meta/latest.pth (the exact resume file), train_log.csv and loss.png, each <= 16 MiB;
#   5. SAMPLES: sample-only study points (evaluation.study --sample_only on the GPU) for SAMPLE_MINUTES, then the
#      finished points packed into $OUT/samples_<k>.zip with scripts/pack_samples.py, in the files and bytes that the
#      device tool still brings back (8 files, 64 MiB; the costliest points first).  Here, afterwards:
#        python scripts/pack_samples.py unpack <files_at> runs/study
#        python -m evaluation.study c64_curves --csv results/model_c64/study.csv   # features only, on the CPU
#   6. BENCH=1: benchmarks/gpu_speed.py in the time left ($OUT/gpu_speed.log).
# Everything printed also goes to $OUT/session.log (at most 8 files in $OUT, 2 folders deep at most: what the device
# tool brings back).  The exit status is 0 when every stage that ran passed.
#
# The tree that travels must be under 64 MiB; with the shipped resume files it is not.  Before the call, here:
#   python scripts/device_tree.py --drop_resume --carry .whl [runs/model_c64_gpu]    (prints the size; exit 1: over)
# and after it: git checkout -- checkpoints results
#
# On the device machine (the `run` tool; commands run in the repository root), timeout_s 600:
#   first session:  command  "bash scripts/gpu_session.sh"                carry [".whl"]
#   later sessions: put the previous session's c64/ files into runs/model_c64_gpu/ (checkpoints-meta/latest.pth and
#                   train_log.csv), then the same command with             carry [".whl", "runs/model_c64_gpu"]
#   the paper's NCSN (issue 33 part 4; ngf 64, 7.6 M parameters): copy ../shared/data/mnist/*.gz into runs/mnist/
#                   (11 MB) and run  CONFIG=configs/ncsn/mnist.py DATA=runs/mnist WORKDIR=runs/ncsn64 SHIP=ncsn64 PRECISION=fp32
#                   SHIP_ARGS="--half --no_resume" SAMPLES="" BENCH=0 GPU_TESTS=0 bash scripts/gpu_session.sh  with
#                   carry [".whl", "runs/mnist"].  Its resume file (weights and both Adam moments, about 90 MB) cannot
#                   come back (16 MiB a file, 64 MiB a reply): it trains within one machine's lease (a second call on
#                   the warm machine resumes from that machine's disk), and ships its weights in float16 (15 MB)
#   fixture checks: copy ../shared/fixtures/* into runs/fixtures/ and add "runs/fixtures" to carry (14 MB; the tree
#                   travels within 64 MiB: fixtures and a resume folder together do not fit, one at a time)
# The machine has torch, absl-py, numpy, scipy, pillow, matplotlib, tqdm, pytest, but no ml_collections; fetch its
# wheel here once (pure Python; /.whl/ is git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections==1.1.0
#
# Settings (environment variables) [default]:
#   SESSION_MINUTES [9]     the whole script ends within this (then the device tool's reply brings $OUT back)
#   TRAIN_MINUTES   [auto]  training wall time; auto: the time left after the tests, minus 1 min for shipping and the
#                           margin, minus BENCH_MINUTES; a given value is capped at that too
#   BENCH_MINUTES   [1.5]   kept for benchmarks/gpu_speed.py (its --budget_s: whatever is left then)
#   PRECISION       [bf16]  training precision: fp32 | tf32 | bf16 (bf16 shown loss-neutral on C32: results/bf16_training/,
#                           benchmarks/bf16_training.py; the paper's NCSN below keeps its official fp32)
#   COMPILE         [0]     1: torch.compile the training step (pays only if the compile, ~1 min, is short next to
#                           TRAIN_MINUTES)
#   CONFIG          [configs/ve/deadleaves64_ncsnpp.py]     WORKDIR [runs/model_c64_gpu]     DATA [deadleaves]
#   SHIP_ARGS       [""]    more scripts/ship_checkpoint.py flags: "--half --no_resume" for a network whose
#                           weights or resume file exceed 16 MiB (the paper's NCSN, below)
#   SHIP            [c64]   the folder under $OUT (C128: CONFIG=configs/ve/deadleaves128_ncsnpp.py
#                           WORKDIR=runs/model_c128 SHIP=c128; the CPU model C64 (:cpu) trains in runs/model_c64)
#   OUT             [$OUT of the device machine, else runs/gpu_session]
#   SAMPLES         [the ten 500- and 1000-iteration points of c64_curves]   space-separated STUDY[:POINT,POINT...]
#                           (evaluation.study names); "" for none.  E.g. "d_curves d_rivals": Model D's points are
#                           28 px grey (0.8 MB packed per 2,000 samples), so a reply carries nearly all of them
#   SAMPLE_MINUTES  [2]     the sample-only stage's wall time (its finished points are packed; a point cut short is
#                           left for the CPU, whole)       SAMPLE_ROOT [runs/gpu_samples]  where the points are drawn
#   GPU_TESTS [1]   BENCH [1]   FIXTURES [runs/fixtures]   PYTHON [python3, else python]
#   PDS_GPU_SESSION_TINY [0] 1: the CPU rehearsal: a tiny C64 (nf 8, 16 px, batch 4, 16 images) on the CPU for
#                           TRAIN_MINUTES [0.15], the CPU-runnable tests, 4 samples of c32_curves' vanilla_10it
#                           (SAMPLE_MINUTES [0.5]), benchmarks/gpu_speed.py --tiny; a rerun resumes
#                           (tests/scripts/test_gpu_session.py runs it twice; about 60 s on 2 busy cores)
set -uo pipefail
cd "$(dirname "$0")/.."

TINY=${PDS_GPU_SESSION_TINY:-0}
SESSION_MINUTES=${SESSION_MINUTES:-$([ "$TINY" = 1 ] && echo 4 || echo 9)}
BENCH_MINUTES=${BENCH_MINUTES:-$([ "$TINY" = 1 ] && echo 0.5 || echo 1.5)}
TRAIN_MINUTES=${TRAIN_MINUTES:-$([ "$TINY" = 1 ] && echo 0.15 || echo auto)}
PRECISION=${PRECISION:-bf16}
COMPILE=${COMPILE:-0}
CONFIG=${CONFIG:-configs/ve/deadleaves64_ncsnpp.py}
WORKDIR=${WORKDIR:-runs/model_c64_gpu}
DATA=${DATA:-deadleaves}
SHIP=${SHIP:-c64}
C64_LONG=c64_curves:vanilla_500it,pds_a5_500it,pds_a10_500it,pds_auto_500it,pds_a10_marg_500it,vanilla_1000it,pds_a5_1000it,pds_a10_1000it,pds_auto_1000it,pds_a10_marg_1000it
SAMPLES=${SAMPLES-$([ "$TINY" = 1 ] && echo c32_curves:vanilla_10it || echo "$C64_LONG")}
SAMPLE_MINUTES=${SAMPLE_MINUTES:-$([ "$TINY" = 1 ] && echo 0.5 || echo 2)}
SAMPLE_ROOT=${SAMPLE_ROOT:-runs/gpu_samples}
GPU_TESTS=${GPU_TESTS:-1}
BENCH=${BENCH:-1}
FIXTURES=${FIXTURES:-runs/fixtures}
OUT=${OUT:-runs/gpu_session}
PY=${PYTHON:-$(command -v python3 >/dev/null 2>&1 && echo python3 || echo python)}
export PYTHONUNBUFFERED=1

mkdir -p "$OUT"
LOG="$OUT/session.log"
: > "$LOG"
START=$(date +%s)
DEADLINE=$((START + $(awk -v m="$SESSION_MINUTES" 'BEGIN { printf "%d", m * 60 }')))
FAILED=()
say() { echo "[gpu_session $(($(date +%s) - START)) s] $*" | tee -a "$LOG"; }
left() { echo $((DEADLINE - $(date +%s))); }
run() { "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

say "start: SESSION_MINUTES=$SESSION_MINUTES TRAIN_MINUTES=$TRAIN_MINUTES BENCH_MINUTES=$BENCH_MINUTES SAMPLE_MINUTES=$SAMPLE_MINUTES PRECISION=$PRECISION COMPILE=$COMPILE CONFIG=$CONFIG WORKDIR=$WORKDIR OUT=$OUT TINY=$TINY"
[ -n "$SAMPLES" ] && say "samples: $SAMPLES into $SAMPLE_ROOT"

# -- 1. the machine ----------------------------------------------------------------------------------------------
if ! "$PY" -c 'import ml_collections' >/dev/null 2>&1; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    say "ml_collections missing: installing the carried wheels of .whl/ into /tmp/site"
    run "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { say "error: pip could not install .whl/*.whl; expected the wheels of the header's pip download"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    say "error: ml_collections is not installed and no .whl/ was carried; expected: python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections==1.1.0 here, then carry [\".whl\"]"
    exit 1
  fi
fi
run "$PY" - <<'EOF' || { say "error: python / torch do not start here"; exit 1; }
import torch, ml_collections, sys
cuda = torch.cuda.is_available()
print(f'python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, '
      + (f'GPU {torch.cuda.get_device_name(0)} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)'
         if cuda else 'no GPU'))
EOF
if [ "$TINY" = 1 ]; then
  DEVICE=cpu
else
  DEVICE=cuda
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || { say "error: no CUDA GPU here; expected the device machine (or PDS_GPU_SESSION_TINY=1 for the CPU rehearsal)"; exit 1; }
fi

# -- 2. the CUDA tests of the speed switches ---------------------------------------------------------------------
if [ "$GPU_TESTS" = 1 ]; then
  say "tests: the speed switches on $DEVICE (tests/sampling/test_graphs.py, tests/models/test_speed.py -k cuda)"
  run "$PY" -m pytest -q -p no:cacheprovider -rs tests/sampling/test_graphs.py tests/models/test_speed.py -k cuda \
    || FAILED+=("speed-switch tests")
  if [ -d "$FIXTURES" ] && [ "$DEVICE" = cuda ]; then
    for precision in fp32 tf32; do
      say "tests: official fixtures on CUDA, $precision ($FIXTURES)"
      PDS_FIXTURES="$PWD/$FIXTURES" PDS_TEST_DEVICE=cuda PDS_TEST_PRECISION=$precision \
        run "$PY" -m pytest -q -p no:cacheprovider -s tests/models/test_model_fixtures.py tests/sampling/test_sampler_fixtures.py \
        || FAILED+=("fixtures $precision")
    done
  fi
fi

# -- 3. training -------------------------------------------------------------------------------------------------
SHIP_RESERVE=60
bench_reserve=0
[ "$BENCH" = 1 ] && bench_reserve=$(awk -v m="$BENCH_MINUTES" 'BEGIN { printf "%d", m * 60 }')
[ "$TINY" = 1 ] && SHIP_RESERVE=20
sample_reserve=0
[ -n "$SAMPLES" ] && sample_reserve=$(awk -v m="$SAMPLE_MINUTES" 'BEGIN { printf "%d", m * 60 + 10 }')
avail=$(( $(left) - SHIP_RESERVE - bench_reserve - sample_reserve ))
if [ "$TRAIN_MINUTES" = auto ]; then
  train_s=$avail
else
  train_s=$(awk -v m="$TRAIN_MINUTES" -v a="$avail" 'BEGIN { s = m * 60; printf "%d", (s < a ? s : a) }')
  [ "$(awk -v m="$TRAIN_MINUTES" 'BEGIN { print (m * 60 < 1) }')" = 1 ] && train_s=1
fi
TRAIN_ARGS=(--config "$CONFIG" --mode train --data "$DATA" --workdir "$WORKDIR" --precision "$PRECISION")
[ "$COMPILE" = 1 ] && TRAIN_ARGS+=(--compile)
if [ "$TINY" = 1 ]; then
  TRAIN_ARGS+=(--device cpu --config.model.nf=8 --config.data.image_size=16 --config.training.batch_size=4
               --config.training.log_freq=2 --config.training.snapshot_freq=1000 --config.optim.warmup=2)
  [ "$DATA" = deadleaves ] && TRAIN_ARGS[5]=deadleaves:16
fi
resumed=no
[ -f "$WORKDIR/checkpoints-meta/latest.pth" ] && resumed=yes
if [ "$train_s" -lt 1 ]; then
  say "training skipped: no time left (SESSION_MINUTES $SESSION_MINUTES)"
  FAILED+=("training (no time)")
else
  train_min=$(awk -v s="$train_s" 'BEGIN { printf "%.3f", s / 60 }')
  say "training: $CONFIG on $DATA in $WORKDIR for $train_min min (resume: $resumed), precision $PRECISION, compile $COMPILE"
  run "$PY" main.py "${TRAIN_ARGS[@]}" --max_minutes "$train_min" || FAILED+=("training")
fi

# -- 4. ship -----------------------------------------------------------------------------------------------------
if [ -f "$WORKDIR/checkpoints-meta/latest.pth" ]; then
  say "ship: $WORKDIR -> $OUT/$SHIP"
  # shellcheck disable=SC2086  # SHIP_ARGS: words on purpose
  run "$PY" scripts/ship_checkpoint.py --workdir "$WORKDIR" --out "$OUT/$SHIP" ${SHIP_ARGS:-} || FAILED+=("ship")
  run "$PY" - "$WORKDIR" <<'EOF' || true
import csv, os, sys
rows = list(csv.DictReader(open(os.path.join(sys.argv[1], 'train_log.csv'))))
if rows:
    last = rows[-1]
    print(f"trained to step {last['step']}: loss {float(last['loss']):.4g}, {float(last['it_per_s']):.2f} it/s in the last window")
EOF
else
  say "ship: nothing to ship ($WORKDIR/checkpoints-meta/latest.pth does not exist)"
fi

# -- 5. sample-only study points, packed into what comes back --------------------------------------------------
if [ -n "$SAMPLES" ]; then
  sample_s=$(awk -v m="$SAMPLE_MINUTES" 'BEGIN { printf "%d", m * 60 }')
  room=$(( $(left) - bench_reserve - 10 ))
  [ "$room" -lt "$sample_s" ] && sample_s=$room
  sample_end=$(( $(date +%s) + sample_s ))
  for spec in $SAMPLES; do
    study=${spec%%:*}
    t=$(( sample_end - $(date +%s) ))
    if [ "$t" -lt 10 ]; then
      say "samples: no time left for $spec"
      break
    fi
    SAMPLE_ARGS=("$study" --sample_only --device "$DEVICE" --out "$SAMPLE_ROOT" --no_progress)
    [ "$spec" != "$study" ] && SAMPLE_ARGS+=(--only "${spec#*:}")
    [ "$TINY" = 1 ] && SAMPLE_ARGS+=(--samples 4)
    say "samples: $spec on $DEVICE, $t s at most"
    timeout -s TERM "$t" "$PY" -m evaluation.study "${SAMPLE_ARGS[@]}" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    case $rc in
      0) ;;
      124|143) say "samples: $spec stopped at the time limit; its finished points are packed, the others left whole" ;;
      *) FAILED+=("samples $spec") ;;
    esac
  done
  # what the device tool still brings back: 8 files and 64 MiB in all, less the benchmark log and 2 MiB for the logs
  files_now=$(find "$OUT" -type f | wc -l)
  bytes_now=$(du -sb "$OUT" | cut -f1)
  max_files=$(( 8 - files_now - BENCH ))
  max_bytes=$(( 64 * 1048576 - bytes_now - 2 * 1048576 ))
  if [ -d "$SAMPLE_ROOT" ] && [ "$max_files" -ge 1 ] && [ "$max_bytes" -gt 1048576 ]; then
    say "samples: packing the finished points of $SAMPLE_ROOT into $OUT ($max_files files, $max_bytes bytes at most)"
    run "$PY" scripts/pack_samples.py pack "$SAMPLE_ROOT" "$OUT" --max_files "$max_files" --max_bytes "$max_bytes" \
      || FAILED+=("pack samples")
  else
    say "samples: nothing packed ($max_files files and $max_bytes bytes left, or no points in $SAMPLE_ROOT)"
  fi
fi

# -- 6. the benchmark --------------------------------------------------------------------------------------------
if [ "$BENCH" = 1 ]; then
  budget=$(( $(left) - 15 ))
  if [ "$budget" -ge 30 ]; then
    say "benchmark: benchmarks/gpu_speed.py, budget $budget s"
    if [ "$TINY" = 1 ]; then
      BENCH_ARGS=(--tiny --compile_backend eager --threads 1 --models ncsnpp32 --configs baseline bf16 cuda_graphs
                  --no_train --no_profile)
    else
      BENCH_ARGS=()
    fi
    run "$PY" benchmarks/gpu_speed.py --budget_s "$budget" --log "$OUT/gpu_speed.log" "${BENCH_ARGS[@]}" \
      || FAILED+=("benchmark")
  else
    say "benchmark skipped: $budget s left (needs 30)"
  fi
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  say "done in $(($(date +%s) - START)) s; FAILED: ${FAILED[*]}"
  exit 1
fi
say "done in $(($(date +%s) - START)) s; every stage passed; files in $OUT"
