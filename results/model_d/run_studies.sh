#!/usr/bin/env bash
# Every Model D measurement of issue 31 part 3 (studies/model_d.py), from scratch or continuing (resumable: a killed
# run picks up where it stopped, and rows already in results/model_d/study.csv are never redone or duplicated).
#   PDS_DATA=<folder holding mnist/> PDS_INCEPTION=<default_1.pt> bash results/model_d/run_studies.sh [STUDY ...]
# STUDY: d_first (26 points of d_rivals that answer the supplementary's §7 question at NFE 20 / 50 / 100: vanilla
# PC, PDS (a) and (b), DDPM, DDIM, DPM-Solver++ 2M SDE, EDM stochastic, and at NFE 20 PC vanilla / (b) / (a) at
# score_sde's eps 1e-3, vanilla / (b) also with the denoiser as last step; their rows serve the full studies),
# d_quality (the quality bar: vanilla PC at N = 1000 and DDPM ancestral on the 1000-step chain, 500 samples each),
# d_curves (10 .. 1000 iterations: PC vanilla, PDS official alpha 5 / 10, marginal alpha 5 / 10, automatic
# PDS; PC + Langevin corrector vanilla and with PDS in the corrector only; DDPM vanilla, PDS official and marginal),
# d_rivals (DDIM, EDM Heun / stochastic, DPM-Solver++ 2M / 2M SDE / 3M SDE at NFE 10 .. 200, PF-ODE RK45 at three
# tolerances, beside the curves' points and PC at eps 1e-3, plain or with the denoiser last step); default all four.
# Needs checkpoints/ddpmpp_mnist_cpu/checkpoint.pth (Model D, configs/vp/mnist_ddpmpp_cpu.py): the rows are those of
# its sha256, so a newer snapshot shipped later starts the studies afresh (the older rows stay in the CSV, apart).
# Then the tables (results/model_d/<study>.md) and plots are redrawn.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PDS_DATA:?set PDS_DATA to the folder holding mnist/ (MNIST IDX files)}"
OUT=results/model_d
CKPT=checkpoints/ddpmpp_mnist_cpu/checkpoint.pth
[ -f "$CKPT" ] || { echo "error: $CKPT not found (Model D is not shipped yet)" >&2; exit 2; }
SHA=$(sha256sum "$CKPT" | cut -c1-8)
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(d_first d_quality d_curves d_rivals)
# --csv names the committed CSV on purpose: without it a study writes under runs/study/ (untracked)
for s in "${studies[@]}"; do
  nice -n 19 python -m evaluation.study "$s" --csv "$OUT/study.csv" --no_progress
done
for s in d_first d_quality d_curves d_rivals; do
  python -m evaluation.study "$s" --csv "$OUT/study.csv" --summary > "$OUT/$s.md"
done
[ -f "$OUT/study.csv" ] || exit 0
PC="vanilla;PDS stats α=5 (Table 2, 100 it);PDS stats α=10 (Table 2, 200 it);PDS stats α=5, marginal predictor;PDS stats α=10, marginal predictor;PDS auto"
CORR="vanilla, PC + Langevin corrector;PDS stats α=5, corrector only (PC + Langevin corrector)"
DDPM="DDPM ancestral;DDPM + PDS stats α=5;DDPM + PDS stats α=5, marginal"
CURVES="$PC;$CORR;$DDPM"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_fid.png" --only "$CURVES" --logy --title "Model D: FID against iterations" --features inception --checkpoint "$SHA"
python -m evaluation.plot "$OUT/study.csv" "$OUT/curves_kid.png" --only "$CURVES" --metric kid --logy --title "Model D: KID" --features inception --checkpoint "$SHA"
EPS3="vanilla, eps 1e-3;PDS stats α=5, eps 1e-3;PDS stats α=5, marginal predictor, eps 1e-3;vanilla, eps 1e-3, denoiser last step;PDS stats α=5, marginal predictor, eps 1e-3, denoiser last step"
RIVALS="$CURVES;$EPS3;DDIM (η=0);EDM Heun;EDM stochastic;DPM-Solver++ 2M;DPM-Solver++ 2M SDE;DPM-Solver++ 3M SDE;PF-ODE RK45"
python -m evaluation.plot "$OUT/study.csv" "$OUT/rivals_fid.png" --only "$RIVALS" --x nfe --logy --title "Model D: FID against NFE" --features inception --checkpoint "$SHA"
