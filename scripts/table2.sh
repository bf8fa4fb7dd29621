#!/usr/bin/env bash
# Supplementary Table 2 (NCSN++, statistics frequency filter, Eq. 22) with Clean-FID: for each row, sample vanilla
# and PDS at that row's iterations (vanilla = the same speed_up, pds off), score both, print the table (markdown;
# also written to <out>/table2.md).  Runs shared with Table 3 are sampled and scored once (same --out).
#
# Needs (checked before starting; one error lists what is missing):
#   official checkpoints (score_sde_pytorch), under $PDS_CHECKPOINTS (default checkpoints/official/), one file each:
#     ve/cifar10_ncsnpp_deep_continuous/checkpoint_12.pth
#     ve/bedroom_ncsnpp_continuous/checkpoint_127.pth
#     ve/church_ncsnpp_continuous/checkpoint_126.pth
#     ve/ffhq_1024_ncsnpp_continuous/checkpoint_60.pth
#   PDS statistics filters in assets/stats/ (or --stats_dir): cifar10_freq.npy, bedroom_freq.npy, church_freq.npy,
#     ffhq_freq.npy, ffhq_space.npy  (python main.py --config <config> --mode stats --data <images>)
#   references: clean-fid's precomputed statistics cifar10/train/32, lsun_church/train/256, ffhq/trainval70k/1024
#     (downloaded by clean-fid; offline: --ref cifar10=<file.npz> ...), and LSUN bedroom images
#     $PDS_LSUN/bedroom_train[.zip] (custom statistics) or --ref bedroom256=SPEC
#   the Inception network: --inception_path FILE or $PDS_INCEPTION, else clean-fid downloads it.
#
# Usage: bash scripts/table2.sh [--quick] [--rows KEY,...] [--out DIR] [--device auto] [--num_samples N] ...
#        NPROC=4 bash scripts/table2.sh ...      # torchrun over 4 processes
# Options: python scripts/tables.py --help
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${NPROC:-1}" -gt 1 ]; then
  exec python -m torch.distributed.run --standalone --nproc_per_node="$NPROC" "$HERE/tables.py" table2 "$@"
fi
exec python "$HERE/tables.py" table2 "$@"
