#!/usr/bin/env bash
# Every Model B measurement quoted in docs/results-model-b.md, from scratch or continuing (resumable: a killed run
# picks up where it stopped, and rows already in results/model_b/study.csv are never redone or duplicated).
#   PDS_DATA=<folder holding mnist/> PDS_INCEPTION=<default_1.pt> bash results/model_b/run_studies.sh [STUDY ...]
# STUDY: b_curves (PC, 10 .. 1000 iterations), b_rivals (same-NFE rivals, adaptive solvers); default both.
# Needs the shipped checkpoints/ncsnpp_mnist_cpu/checkpoint.pth.  Then the tables (results/model_b/<study>.md) and
# plots are redrawn.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PDS_DATA:?set PDS_DATA to the folder holding mnist/ (MNIST IDX files)}"
OUT=results/model_b
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(b_curves b_rivals)
# --csv names the committed CSV on purpose: without it a study writes under runs/study/ (untracked)
for s in "${studies[@]}"; do
  nice -n 19 python -m evaluation.study "$s" --csv "$OUT/study.csv" --no_progress
done
for s in b_curves b_rivals; do
  python -m evaluation.study "$s" --csv "$OUT/study.csv" --summary > "$OUT/$s.md"
done
CURVES="vanilla;PDS stats α=5 (Table 2, 100 it);PDS stats α=10 (Table 2, 200 it);PDS auto;PDS stats α=5, corrector only;PDS stats α=5, marginal predictor;PDS stats α=10, marginal predictor"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_fid.png" --only "$CURVES" --logy --title "Model B: FID against PC iterations" --features inception
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_kid.png" --only "$CURVES" --metric kid --logy --title "Model B: KID" --features inception
RIVALS="$CURVES;EDM Heun;EDM stochastic;Euler (PF-ODE);PF-ODE RK45;Gotta Go Fast;Heun + Langevin corrector;Heun + PDS corrector (stats, α=5);DPM-Solver++ 2M;DPM-Solver++ 2M SDE;DPM-Solver++ 3M SDE"
python -m evaluation.plot "$OUT/study.csv" "$OUT/rivals_fid.png" --only "$RIVALS" --x nfe --logy --title "Model B: FID against NFE" --features inception
