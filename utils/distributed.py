"""torchrun support: ``torchrun --nproc_per_node=K main.py ... --mode sample|eval``.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK.  With WORLD_SIZE > 1 :func:`session` opens a process group (gloo on
CPU, nccl on CUDA, with ``torch.cuda.set_device(LOCAL_RANK)``), :func:`barrier` waits for every rank, and the group
is destroyed on exit.  Without torchrun everything is a no-op (rank 0 of 1).  The work split itself is
``runners.sample.run_sample``'s (batch b on rank b % K), so the images do not depend on K.
"""
import contextlib
import datetime
import os

import torch
import torch.distributed as dist

TIMEOUT_ENV = 'PDS_DIST_TIMEOUT_S'
DEFAULT_TIMEOUT_S = 6 * 3600   # ranks wait at the barrier for the slowest one (and for rank 0's reference statistics)


def env():
    """(rank, world_size, local_rank) from torchrun's environment ((0, 1, 0) without it)."""
    return int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)), int(os.environ.get('LOCAL_RANK', 0))


def initialized():
    return dist.is_available() and dist.is_initialized()


def init(device='cpu'):
    """Open the process group when WORLD_SIZE > 1 (gloo for a CPU ``device``, nccl for CUDA).  Returns
    (rank, world_size, local_rank)."""
    rank, world, local = env()
    if world > 1 and not initialized():
        cuda = torch.device(device).type == 'cuda'
        if cuda:
            torch.cuda.set_device(torch.device(device).index if torch.device(device).index is not None else local)
        timeout = datetime.timedelta(seconds=int(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
        dist.init_process_group('nccl' if cuda else 'gloo', timeout=timeout)
    return rank, world, local


def barrier():
    """Wait for every rank (no-op without a process group)."""
    if not initialized() or dist.get_world_size() == 1:
        return
    if dist.get_backend() == 'nccl':
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def destroy():
    if initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device='cpu'):
    """``with session(device) as (rank, world_size, local_rank):`` -- init, then destroy on exit."""
    try:
        yield init(device)
    finally:
        destroy()
