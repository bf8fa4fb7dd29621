#!/usr/bin/env bash
# A first look at Model A (checkpoints/ncsn_mnist_cpu) at 20 iterations: vanilla, PDS (Table 1 settings) and
# automatic PDS, Clean-FID / KID against the 10,000 MNIST test images, N samples each (default 1000), and the
# sample grids (same seeds).  Resumable (each run is a --mode eval workdir); rows go to results/mnist_cpu/results.csv.
#   PDS_DATA=<folder holding mnist/> PDS_INCEPTION=<default_1.pt> bash results/mnist_cpu/first_look.sh [N [REF]]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
REF=${2:-10000}     # reference test images (a seeded subset when fewer than 10,000)
CK=checkpoints/ncsn_mnist_cpu/checkpoint.pth
OUT=runs/mnist_cpu_first_look
run() {   # name, extra flags...
  local name=$1; shift
  python main.py --config configs/mnist_cpu_pds.py --mode eval --checkpoint "$CK" --workdir "$OUT/$name" \
    --num_samples "$N" --batch_size 100 --fid_ref "data:$PDS_DATA/mnist" --fid_split test --num_images "$REF" \
    --results_csv results/mnist_cpu/results.csv --device cpu "$@"
  python main.py --config configs/mnist_cpu_pds.py --mode sample --checkpoint "$CK" --workdir "$OUT/grid_$name" \
    --num_samples 64 --batch_size 64 --device cpu "$@" > /dev/null
  cp "$OUT/grid_$name/grid.png" "results/mnist_cpu/grid_$name.png"
}
run vanilla_20it --pds=false
run pds_table1_20it
run pds_auto_20it --config.pds.freq=auto
# the quality bar: vanilla annealed Langevin at the official schedule (10 levels x 100 steps, step_lr 2e-5)
python main.py --config configs/mnist_cpu_pds.py --mode sample --checkpoint "$CK" --workdir "$OUT/grid_vanilla_1000it" \
  --num_samples 64 --batch_size 64 --device cpu --pds=false --config.sampling.n_steps_each=100 > /dev/null
cp "$OUT/grid_vanilla_1000it/grid.png" results/mnist_cpu/grid_vanilla_1000it.png
