"""PDS: preconditioned diffusion sampling for NCSN, NCSNv2 and NCSN++.

    python main.py --config configs/mnist_pds.py --mode sample --checkpoint <ckpt> --workdir runs/mnist
    python main.py --config configs/ve/cifar10_ncsnpp_continuous.py --mode sample --speed_up 10 --pds ...
    python main.py --config configs/ncsn/mnist.py --mode stats --data <mnist folder>
    python main.py --config configs/ncsn/mnist.py --mode train --data <mnist folder> --workdir runs/train

Any config field can be overridden: --config.sampling.step_lr=1e-5 --config.pds.lam=1.1 ...
"""
from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Config file (configs/...py[:setting]).', lock_config=False)
flags.DEFINE_enum('mode', 'sample', ['sample', 'stats', 'train'], 'What to run.')
flags.DEFINE_string('workdir', None, 'Output folder (samples, checkpoints, logs).')
flags.DEFINE_string('checkpoint', None, 'Official checkpoint file or run folder (sample mode).')
flags.DEFINE_bool('ema', True, 'Use the EMA weights of the checkpoint, as the official samplers do.')
flags.DEFINE_integer('num_samples', 64, 'Number of samples.')
flags.DEFINE_integer('batch_size', None, 'Sampling batch size (default: config.sampling.batch_size).')
flags.DEFINE_integer('seed', None, 'Seed (default: config.seed).')
flags.DEFINE_string('device', 'auto', "'auto', 'cpu', 'cuda', 'cuda:1', ...")
flags.DEFINE_enum('noise_device', 'cpu', ['cpu', 'device'],
                  "Where noise is drawn: 'cpu' (reproducible across devices, official protocol) or 'device' (faster).")
flags.DEFINE_float('speed_up', None, 'PDS command line speed-up: N = int(num_scales / speed_up), eps = 1e-5 * speed_up.')
flags.DEFINE_bool('pds', None, 'Turn preconditioning on / off (default: as the config says).')
flags.DEFINE_string('data', None, 'Dataset path (stats / train modes).')
flags.DEFINE_integer('num_images', None, 'Stats: use a seeded random subset of this many images.')
flags.DEFINE_integer('workers', 0, 'Data loader workers.')
flags.DEFINE_bool('skip_bad', False, 'Skip unreadable images instead of stopping.')
flags.DEFINE_string('stats_dir', 'assets/stats', 'Stats: output folder.')
flags.DEFINE_string('name', None, 'Stats: file name prefix (default: the dataset name).')
flags.DEFINE_bool('plot', True, 'Stats: also draw the statistics as <name>_stats.png.')
flags.mark_flags_as_required(['config'])


def main(argv):
    del argv
    from runners import cli
    cli.run(FLAGS.mode, FLAGS.config, FLAGS)


if __name__ == '__main__':
    app.run(main)
