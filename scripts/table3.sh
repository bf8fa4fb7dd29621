#!/usr/bin/env bash
# Supplementary Table 3: Clean-FID of vanilla vs PDS sampling at the accelerated iterations (NCSNv2 LSUN church 96
# at 156 iterations and tower 128 at 108; NCSN++ LSUN bedroom / church 256 at 166, FFHQ 1024 at 66), 50k samples
# each, printed in the paper's layout with the paper's numbers beside ours (also written to <out>/table3.md).
# Runs shared with Tables 1 and 2 (same --out) are sampled and scored once.
#
# Needs (checked before starting; one error lists what is missing):
#   official checkpoints, under $PDS_CHECKPOINTS (default checkpoints/official/):
#     ncsnv2/church/checkpoint_200000.pth        ermongroup/ncsnv2 exp/logs/church/
#     ncsnv2/tower/checkpoint_150000.pth         ermongroup/ncsnv2 exp/logs/tower/
#     ve/bedroom_ncsnpp_continuous/checkpoint_127.pth        score_sde_pytorch
#     ve/church_ncsnpp_continuous/checkpoint_126.pth         score_sde_pytorch
#     ve/ffhq_1024_ncsnpp_continuous/checkpoint_60.pth       score_sde_pytorch
#   PDS statistics filters in assets/stats/ (or --stats_dir): bedroom_freq.npy, church_freq.npy, ffhq_freq.npy,
#     ffhq_space.npy
#   references: $PDS_LSUN/{church_outdoor,tower,bedroom}_train[.zip] (LSUN images, custom statistics); clean-fid's
#     lsun_church/train/256 and ffhq/trainval70k/1024 (downloaded; offline: --ref church256=<file.npz> ...)
#   the Inception network: --inception_path FILE or $PDS_INCEPTION, else clean-fid downloads it.
#
# Usage: bash scripts/table3.sh [--quick] [--rows KEY,...] [--out DIR] [--device auto] [--num_samples N] ...
#        NPROC=4 bash scripts/table3.sh ...      # torchrun over 4 processes
# Options: python scripts/tables.py --help
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${NPROC:-1}" -gt 1 ]; then
  exec python -m torch.distributed.run --standalone --nproc_per_node="$NPROC" "$HERE/tables.py" table3 "$@"
fi
exec python "$HERE/tables.py" table3 "$@"
