#!/usr/bin/env bash
# Every Model A measurement quoted in docs/results-model-a.md, from scratch or continuing (resumable: a killed run
# picks up where it stopped, and rows already in results/model_a/study.csv are never redone or duplicated).
#   PDS_DATA=<folder holding mnist/> PDS_INCEPTION=<default_1.pt> bash results/model_a/run_studies.sh [STUDY ...]
# STUDY: a_map (20 iterations, gain x step_lr), a_curves (10 .. 1000 iterations), a_rivals (same-NFE rivals);
# default all three in that order.  Then the tables (results/model_a/<study>.md) and plots are redrawn.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PDS_DATA:?set PDS_DATA to the folder holding mnist/ (MNIST IDX files)}"
OUT=results/model_a
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(a_map a_curves a_rivals)
# --csv names the committed CSV on purpose: without it a study writes under runs/study/ (untracked)
for s in "${studies[@]}"; do
  nice -n 19 python -m evaluation.study "$s" --csv "$OUT/study.csv" --no_progress
done
for s in a_map a_curves a_rivals; do
  python -m evaluation.study "$s" --csv "$OUT/study.csv" --summary > "$OUT/$s.md"
done
python -m evaluation.study a_map --csv "$OUT/study.csv" --plot "$OUT/map_20it.png"
CURVES="vanilla;PDS Table 1 (r=0.2H, λ=1.6);PDS auto"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_fid.png" --only "$CURVES" --title "Model A: FID against iterations" --features inception
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_kid.png" --only "$CURVES" --metric kid --title "Model A: KID" --features inception
RIVALS="$CURVES;Euler (PF-ODE);EDM Heun;EDM stochastic;Heun + Langevin corrector;Heun + PDS corrector (r=0.2H, λ=1.6);DPM-Solver++ 2M;DPM-Solver++ 2M SDE;DPM-Solver++ 3M SDE"
python -m evaluation.plot "$OUT/study.csv" "$OUT/rivals_fid.png" --only "$RIVALS" --x nfe --logy --title "Model A: FID against NFE" --features inception
