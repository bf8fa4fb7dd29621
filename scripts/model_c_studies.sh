#!/usr/bin/env bash
# Every measurement of one dead-leaves model of issue 28 (studies/model_c.py): SIZE 32, 64 or 128 (Models C32 / C64 /
# C128), from scratch or continuing (resumable: a killed run picks up where it stopped, and rows already in
# results/model_c<SIZE>/study.csv are never redone or duplicated).  Called as results/model_c<SIZE>/run_studies.sh:
#   PDS_INCEPTION=<default_1.pt> bash results/model_c32/run_studies.sh [STUDY ...]
# STUDY: c<SIZE>_quality (the quality bar: vanilla PC at score_sde's N, one Langevin step, 500 samples),
# c<SIZE>_curves (PC, 10 .. 1000 iterations: vanilla, PDS alpha 5 / 10, automatic PDS, alpha 10 with the marginal
# predictor), c<SIZE>_rivals (EDM Heun / stochastic, DPM-Solver++ 2M / 2M SDE / 3M SDE at NFE 10 .. 200); default all
# three, curves first (its points run most informative first: every series at 50 and 100 iterations, then vanilla
# beyond, which includes the quality point, vanilla at N).
# No dataset to fetch: the reference is the 10,000 held-out dead leaves of that size (test split, seed 1) generated
# from the config; their Inception features are computed once (about 30 min on 2 CPU cores at 32 px) and cached.
# Needs the model's shipped checkpoint (studies/model_c.py SIZES): the rows are those of its sha256, so a newer
# snapshot shipped later starts the studies afresh (the older rows stay in the CSV, apart).  Then the tables
# (results/model_c<SIZE>/<study>.md), the plots, and the spectrum check of the quality point's samples
# (quality_spectrum.txt / .json / .png; a failed bar is recorded, not fatal).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:?usage: bash scripts/model_c_studies.sh SIZE [STUDY ...] (SIZE: 32, 64 or 128)}
shift
case "$SIZE" in
  32|64|128) ;;
  *) echo "error: no Model C of size '$SIZE' (expected 32, 64 or 128)" >&2; exit 2 ;;
esac
OUT=results/model_c$SIZE
# the model's checkpoint and score_sde's N (studies/model_c.py SIZES)
read -r CKPT N < <(python -c "import os, sys; from studies.model_c import SIZES; s = SIZES[int(sys.argv[1])]; \
print(os.path.join('checkpoints', *s['checkpoint']), s['num_scales'])" "$SIZE")
C=c$SIZE
[ -f "$CKPT" ] || { echo "error: $CKPT not found" >&2; exit 2; }
SHA=$(sha256sum "$CKPT" | cut -c1-8)
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(${C}_curves ${C}_quality ${C}_rivals)
# --csv names the committed CSV on purpose: without it a study writes under runs/study/ (untracked)
for s in "${studies[@]}"; do
  nice -n 19 python -m evaluation.study "$s" --csv "$OUT/study.csv" --no_progress
done
for s in ${C}_quality ${C}_curves ${C}_rivals; do
  python -m evaluation.study "$s" --csv "$OUT/study.csv" --summary > "$OUT/$s.md"
done
[ -f "$OUT/study.csv" ] || exit 0
CURVES="vanilla;PDS stats α=5 (Table 2, 100 it);PDS stats α=10 (Table 2, 200 it);PDS auto;PDS stats α=10, marginal predictor"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_fid.png" --only "$CURVES" --logy --title "Model C$SIZE: FID against PC iterations" --features inception --checkpoint "$SHA"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_kid.png" --only "$CURVES" --metric kid --logy --title "Model C$SIZE: KID" --features inception --checkpoint "$SHA"
RIVALS="$CURVES;EDM Heun;EDM stochastic;DPM-Solver++ 2M;DPM-Solver++ 2M SDE;DPM-Solver++ 3M SDE"
python -m evaluation.plot "$OUT/study.csv" "$OUT/rivals_fid.png" --only "$RIVALS" --x nfe --logy --title "Model C$SIZE: FID against NFE" --features inception --checkpoint "$SHA"
# the spectrum half of the quality bar: the quality point's samples (drawn by c<SIZE>_quality, or by c<SIZE>_curves
# when that ran first: the same point) against the 10,000 held-out dead leaves, every half-octave band within 10 %
WORK=""
for s in ${C}_quality ${C}_curves; do
  [ -d "runs/study/$s/$SHA/vanilla_${N}it/batches" ] && { WORK="runs/study/$s/$SHA/vanilla_${N}it"; break; }
done
if [ -z "$WORK" ]; then
  echo "note: no samples of vanilla_${N}it for checkpoint $SHA under runs/study/ yet; spectrum check skipped" >&2
  exit 0
fi
set +e
python -m evaluation.spectrum "$WORK" --json "$OUT/quality_spectrum.json" --png "$OUT/quality_spectrum.png" > "$OUT/quality_spectrum.txt"
rc=$?
set -e
[ $rc -le 1 ] || exit $rc
cat "$OUT/quality_spectrum.txt"
