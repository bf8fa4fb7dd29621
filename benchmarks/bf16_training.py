"""Is bf16 autocast *training* loss-neutral?  (issue 28: C64 / C128 train with bf16 on a GPU only once this is shown
on C32.)  Both precisions continue the shipped Model C32 from its exact resume file (step 6,595) for the same
``--steps`` steps: the same batches, the same noise draws, the same optimiser state, only ``training.precision``
differs.  Then each final model (EMA weights, as sampled, and the raw weights) is scored in float32 on a fixed
held-out set: the first ``--heldout`` dead-leaves test images with fixed noise levels and draws (the continuous DSM
loss of training, per image).

A third run, fp32 with another batch order (``seed`` + 1; the same noise generator), measures how much the
held-out loss moves for a reason that does not matter: **loss-neutral** means bf16 moves it less than that,
|L_bf16 - L_fp32| <= |L_fp32,reseeded - L_fp32|, both as paired differences over the same held-out images and noise
(for the raw weights, which training produces, and the EMA weights, which are sampled).  Reported beside it: each
paired difference with its standard error, the training losses of the runs window by window, and how far the fp32
run itself moved the held-out loss in those steps.

    python benchmarks/bf16_training.py                         # 200 steps each, about 40 min on 2 busy CPU cores
    python benchmarks/bf16_training.py --steps 20 --heldout 64 --out /tmp/b   # a quick look
    python benchmarks/bf16_training.py --tiny --out /tmp/t     # every path on a tiny random model (tests)

Resumable: each run is ``main.py --mode train``'s workdir (``<out>/<precision>/``), continued where it stopped; the
held-out scores are recomputed from the checkpoints (seconds).  Writes ``<out>/bf16_training.json`` and ``.md``.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

C32_RUN = os.path.join(ROOT, 'checkpoints', 'ncsnpp_deadleaves32_cpu')
ARMS = {'fp32': ('fp32', 0), 'bf16': ('bf16', 0), 'fp32_reseeded': ('fp32', 1)}   # precision, seed offset


def _config(tiny):
    from configs.ve import deadleaves32_ncsnpp_cpu
    config = deadleaves32_ncsnpp_cpu.get_config()
    config.training.log_freq = 10
    config.training.snapshot_freq = 10 ** 9          # only the final save (the resume file)
    if tiny:
        config.model.nf, config.model.ch_mult, config.model.num_res_blocks = 8, (1, 2), 1
        config.model.attn_resolutions = ()
        config.data.image_size = 8
        config.training.batch_size = 8
    return config


def _start(work, source):
    """A new run folder that resumes from the shipped run's exact state (``source``: a run folder, or None to start
    from the config's initialisation)."""
    if os.path.isfile(os.path.join(work, 'checkpoints-meta', 'latest.pth')) or source is None:
        return
    os.makedirs(os.path.join(work, 'checkpoints-meta'), exist_ok=True)
    for name in ('checkpoints-meta/latest.pth', 'train_log.csv'):
        if os.path.isfile(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(work, name))


def _heldout(config, n, seed=0):
    """The first ``n`` dead-leaves test images (the split of the studies' reference) as a float32 batch in [0, 1]."""
    import torch
    from data.readers import open_dataset
    ds = open_dataset('deadleaves', config, split='test')
    return torch.stack([ds[i] if not isinstance(ds[i], tuple) else ds[i][0] for i in range(n)])


def _score(config, net, images, batch=64, seed=1):
    """The per-image DSM loss (float32, fixed levels and draws from ``seed``) of the network ``net``."""
    import torch
    from training.losses import draw_levels, get_loss_fn
    loss_fn = get_loss_fn(config)
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            x = 2. * x - 1. if config.data.centered else x
            draws = draw_levels(config, len(x), tuple(x.shape[1:]), g, 'cpu')
            out.append(loss_fn(net, x, draws).losses.double())
    return torch.cat(out)


def _weights(work, config):
    """(raw network, EMA network, step) of a run's resume file (its official checkpoint part)."""
    import torch
    import models
    from models.checkpoint import load_into
    state = torch.load(os.path.join(work, 'checkpoints-meta', 'latest.pth'), map_location='cpu', weights_only=False)
    nets = []
    for use_ema in (False, True):
        net = models.create_model(config)
        load_into(net, state['official'], config, use_ema=use_ema)
        nets.append(net.eval())
    return nets[0], nets[1], int(state['step'])


def _mean_se(v):
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(len(v)))


def run(args):
    import torch
    from training.train import run_train
    torch.set_num_threads(max(1, args.threads))
    config = _config(args.tiny)
    os.makedirs(args.out, exist_ok=True)
    source = None if args.tiny else C32_RUN
    images = _heldout(config, args.heldout)
    start_step, results, start_scores = None, {}, None
    for arm, (precision, reseed) in ARMS.items():
        work = os.path.join(args.out, arm)
        _start(work, source)
        c = _config(args.tiny)
        c.training.precision = precision
        c.seed = c.seed + reseed
        if os.path.isfile(os.path.join(work, 'checkpoints-meta', 'latest.pth')):
            first = _weights(work, c)[2]
        else:
            first = 0
        begin = json.load(open(os.path.join(work, 'start.json')))['step'] if os.path.isfile(
            os.path.join(work, 'start.json')) else first
        if not os.path.isfile(os.path.join(work, 'start.json')):
            os.makedirs(work, exist_ok=True)
            with open(os.path.join(work, 'start.json'), 'w') as f:
                json.dump({'step': begin}, f)
        start_step = begin if start_step is None else start_step
        if start_step != begin:
            raise SystemExit(f'{work} started at step {begin}, the other run at {start_step}; expected one start')
        if start_scores is None and begin > 0:
            raw0, ema0, _ = _weights(work, c) if first == begin else (None, None, None)
            if raw0 is not None:
                start_scores = {'ema': _score(c, ema0, images), 'raw': _score(c, raw0, images)}
        tick = time.time()
        run_train(c, work, 'deadleaves', progress=not args.quiet, max_steps=begin + args.steps)
        seconds = time.time() - tick
        raw, ema, step = _weights(work, c)
        results[arm] = dict(step=step, seconds=seconds, ema=_score(c, ema, images), raw=_score(c, raw, images))
        print(f'{arm}: steps {begin + 1} .. {step}, {seconds:.0f} s this call', flush=True)
    return config, start_step, start_scores, results


def _train_windows(out, start):
    """{arm: {step: loss}} of the logged windows after ``start``."""
    import csv
    logs = {}
    for arm in ARMS:
        path = os.path.join(out, arm, 'train_log.csv')
        logs[arm] = {int(r['step']): float(r['loss']) for r in csv.DictReader(open(path))
                           if int(r['step']) > start}
    return logs


def report(args, config, start, start_scores, results):
    import torch
    rows, verdict = [], {}
    for which in ('raw', 'ema'):
        ref = results['fp32'][which]
        (bf, bf_se), (rs, rs_se) = _mean_se(results['bf16'][which] - ref), _mean_se(results['fp32_reseeded'][which] - ref)
        moved = None if start_scores is None else float(ref.mean() - start_scores[which].mean())
        verdict[which] = dict(fp32=float(ref.mean()), bf16_delta=bf, bf16_se=bf_se, reseeded_delta=rs,
                              reseeded_se=rs_se, fp32_moved=moved, neutral=abs(bf) <= abs(rs))
    logs = _train_windows(args.out, start)
    steps = sorted(set.intersection(*(set(v) for v in logs.values())))
    train = {arm: sum(logs[arm][s] for s in steps) / max(len(steps), 1) for arm in ARMS}
    train['windows'] = len(steps)
    record = dict(start_step=start, steps=args.steps, heldout=args.heldout, tiny=args.tiny,
                  torch=torch.__version__, device='cpu', verdict=verdict, train=train,
                  seconds={a: results[a]['seconds'] for a in ARMS})
    for which, v in verdict.items():
        rows.append(f"| {which} | {v['fp32']:.3f} | {v['bf16_delta']:+.4f} ± {v['bf16_se']:.4f} | "
                    f"{v['reseeded_delta']:+.4f} ± {v['reseeded_se']:.4f} | "
                    + ('' if v['fp32_moved'] is None else f"{v['fp32_moved']:+.3f}") + ' | '
                    + ('yes' if v['neutral'] else '**no**') + ' |')
    md = '\n'.join([
        f"Model C32 continued from step {start} for {args.steps} steps per run (batch {config.training.batch_size}, "
        f"CPU, torch {torch.__version__}): fp32, bf16 (the same batches and noise), and fp32 with another batch "
        f"order.  Held-out DSM loss per image on the first {args.heldout} dead-leaves test images (fixed levels and "
        "draws, float32 scoring); differences paired over those images:", '',
        '| weights | fp32 loss | bf16 - fp32 | reseeded fp32 - fp32 | fp32 moved in these steps | loss-neutral |',
        '|---|---|---|---|---|---|', *rows, '',
        f"Training loss over the {train['windows']} logged windows of 10 steps: "
        + ', '.join(f'{a} {train[a]:.3f}' for a in ARMS) + '.',
        'Wall time this call: ' + ', '.join(f"{a} {results[a]['seconds']:.0f} s" for a in ARMS)
        + ' (a shared machine: compare within one run only).', ''])
    with open(os.path.join(args.out, 'bf16_training.json'), 'w') as f:
        json.dump(record, f, indent=1)
    with open(os.path.join(args.out, 'bf16_training.md'), 'w') as f:
        f.write(md)
    print(md)
    return record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=os.path.join('runs', 'bf16_training'))
    p.add_argument('--steps', type=int, default=200)
    p.add_argument('--heldout', type=int, default=512, help='held-out images scored (default 512)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--tiny', action='store_true', help='a tiny random model at 8 px from step 0 (tests)')
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    if args.steps < 1 or args.heldout < 2:
        p.error('--steps >= 1 and --heldout >= 2 expected')
    import torch
    before = torch.get_num_threads()
    try:
        config, start, start_scores, results = run(args)
        return report(args, config, start, start_scores, results)
    finally:
        torch.set_num_threads(before)       # a caller's process (the tests) keeps its own


if __name__ == '__main__':
    main()
