"""README is the front door: its first fenced block is what a new user runs (install, then PDS and vanilla at the same
budget on the shipped Model B), its second is CI's test command, the figures it quotes are the committed study rows of
that very setting, and every relative link of README.md, CONTRIBUTING.md and docs/*.md points at an existing file
(and heading)."""
import csv
import glob
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_B = 'checkpoints/ncsnpp_mnist_cpu/checkpoint.pth'
DOCS = ['README.md', 'CONTRIBUTING.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def read(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as f:
        return f.read()


def fenced_blocks(path='README.md'):
    return re.findall(r'^```[a-z]*\n(.*?)^```', read(path), flags=re.S | re.M)


def commands(block):
    """The shell commands of a fenced block: continuation lines joined, comments and blank lines dropped."""
    lines = block.replace('\\\n', ' ').splitlines()
    return [' '.join(line.split()) for line in lines if line.strip() and not line.lstrip().startswith('#')]


def first_runs():
    """The two ``python main.py`` commands of README's first block, as argument lists: (PDS, vanilla)."""
    runs = [shlex.split(c)[1:] for c in commands(fenced_blocks()[0]) if c.startswith('python main.py ')]
    assert len(runs) == 2, runs
    return runs


def value(args, flag):
    return args[args.index(flag) + 1]


def overrides(args):
    """``--config.<section>.<field>=value`` and ``--pds=...`` of a command, as {key: value}, numbers as floats."""
    out = {}
    for arg in args:
        if arg.startswith('--config.') or arg.startswith('--pds='):
            key, val = arg[2:].split('=', 1)
            key = key[len('config.'):] if key.startswith('config.') else 'pds.enabled'
            try:
                val = float(val)
            except ValueError:
                val = {'false': False, 'true': True}.get(val.lower(), val)
            out[key] = val
    return out


def test_first_block_is_install_then_pds_and_vanilla_at_one_budget():
    """Set-up, then the run that shows PDS (Model B, PC 50 iterations, statistics filter alpha 5) and vanilla at the
    same budget: the same command but for --pds=false in place of the filter setting, into another workdir; README
    says where both grids are."""
    cmds = commands(fenced_blocks()[0])
    assert cmds[0] == 'python -m pip install -r requirements.txt'
    assert len(cmds) == 3
    pds, vanilla = first_runs()
    for args in (pds, vanilla):
        assert value(args, '--config') == 'configs/mnist_ncsnpp_cpu_pds.py'
        assert value(args, '--checkpoint') == MODEL_B
        assert value(args, '--mode') == 'sample' and value(args, '--device') == 'cpu'
        assert int(value(args, '--num_samples')) <= 64             # well under a minute on 2 CPU cores
    assert overrides(pds) == {'sampling.speed_up': 20., 'pds.alpha': 5.}
    assert overrides(vanilla) == {'sampling.speed_up': 20., 'pds.enabled': False}
    strip = lambda args: [a for a in args if a not in ('--config.pds.alpha=5', '--pds=false')]  # noqa: E731
    workdirs = value(pds, '--workdir'), value(vanilla, '--workdir')
    assert workdirs[0] != workdirs[1]
    assert strip(pds) == [a if a != workdirs[1] else workdirs[0] for a in strip(vanilla)]
    text = read('README.md')
    for workdir in workdirs:
        assert f'`{workdir}/grid.png`' in text


def test_quoted_figures_are_the_study_rows_of_that_setting():
    """The FIDs README quotes for its first run (PDS and vanilla) are the committed Model B study rows whose config is
    the first block's, rounded as quoted."""
    quoted = re.search(r"PDS gives FID ([\d.]+) against vanilla's ([\d.]+)", read('README.md'))
    assert quoted, 'README no longer quotes the first run\'s FIDs as "PDS gives FID x against vanilla\'s y"'
    rows = list(csv.DictReader(open(os.path.join(ROOT, 'results', 'model_b', 'study.csv'), encoding='utf-8')))
    for args, fid in zip(first_runs(), quoted.groups()):
        want = overrides(args)
        found = [r for r in rows if r['config'].split()[0] == value(args, '--config')
                 and overrides(r['config'].split()[1:]) == want and r['features'] == 'inception']
        assert found, f'no study row with {want}'
        assert {int(r['num_samples']) for r in found} == {2000} and {int(r['iterations']) for r in found} == {50}
        assert {f'{float(r["fid"]):.1f}' for r in found} == {fid}


def _run_sample(args, workdir, n=8):
    args = list(args)
    args[args.index('--workdir') + 1] = str(workdir)
    if '--num_samples' in args:
        args[args.index('--num_samples') + 1] = str(n)
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(workdir / 'samples')) == sorted(f'{i}.png' for i in range(n))
    assert (workdir / 'grid.png').exists()
    return torch.from_numpy(np.load(workdir / 'batches' / 'batch_000000.npz')['samples'])


@pytest.mark.slow
def test_first_block_sample_run(tmp_path):
    """Both commands of the first block run (8 samples each instead of the block's count); their samples are exactly
    what the Python API draws from the same checkpoint, config, overrides and seed (so the commands are the
    documented samplers), and they show what README says: PDS's digits are clean (values in [0, 1], few grey
    pixels), vanilla's at the same budget still noisy."""
    import sampling
    from configs import mnist_ncsnpp_cpu_pds
    from models.checkpoint import load_score_model
    from runners.sample import batch_generator
    grey = {}
    for name, args in zip(('pds', 'vanilla'), first_runs()):
        x = _run_sample(args, tmp_path / name)
        config = mnist_ncsnpp_cpu_pds.get_config()
        for key, val in overrides(args).items():
            section, field = key.split('.')
            config[section][field] = val
        model = load_score_model(os.path.join(ROOT, value(args, '--checkpoint')), config)
        ref, nfe = sampling.sample(config, model, (8, 1, 28, 28), batch_generator(config.seed, 0))
        assert nfe == 100
        torch.testing.assert_close(x, ref, rtol=1e-5, atol=1e-5)
        grey[name] = float(((x > 0.1) & (x < 0.9)).float().mean())
    assert grey['pds'] < 0.15 and grey['vanilla'] > 0.25, grey   # measured: 0.09 and 0.36


@pytest.mark.slow
def test_exact_score_first_run(tmp_path):
    """The documented offline option without a network (docs/usage.md): the exact score of 1,000 training images;
    samples land on training images (RMS distance ~0.02, noise ~0.3)."""
    runs = [shlex.split(c)[1:] for c in commands(fenced_blocks('docs/usage.md')[0])
            if c.startswith('python main.py') and 'mnist_empirical_pds' in c]
    assert len(runs) == 1
    x = _run_sample(runs[0], tmp_path / 'first', n=16).clamp(0, 1).flatten(1)
    train = torch.from_numpy(np.load(os.path.join(ROOT, 'assets', 'mnist_train_1000.npz'))['images']).float().flatten(1) / 255
    nearest = torch.cdist(x, train).min(1).values / x.shape[1] ** 0.5
    assert float(nearest.mean()) < 0.05


def test_second_block_is_the_test_command():
    assert fenced_blocks()[1].strip() == 'python -m pytest -q'


def test_readme_is_short_and_docs_open_with_a_summary():
    """README stays a front door (at most 250 lines); each page of docs/ opens with its title and a one-paragraph
    summary (prose, not a heading, list, table or code)."""
    assert len(read('README.md').splitlines()) <= 250
    for path in DOCS[2:]:
        lines = read(path).splitlines()
        assert lines[0].startswith('# ') and lines[1] == '', path
        assert lines[2] and lines[2][0] not in '#*-|`!<[' and not lines[2][0].isdigit(), path


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path):
    text = re.sub(r'^```.*?^```', '', read(path), flags=re.S | re.M)
    seen, out = {}, set()
    for heading in re.findall(r'^#{1,6} (.*)$', text, flags=re.M):
        base = slug(heading)
        out.add(base if base not in seen else f'{base}-{seen[base]}')
        seen[base] = seen.get(base, 0) + 1
    return out


def test_slug_is_githubs():
    assert slug("Automatic PDS (`pds.freq = 'auto'`): no alpha, lambda or step size to tune") == \
        'automatic-pds-pdsfreq--auto-no-alpha-lambda-or-step-size-to-tune'
    assert slug('Model A at 7,500 steps: the rival samplers at the same NFE') == \
        'model-a-at-7500-steps-the-rival-samplers-at-the-same-nfe'


@pytest.mark.parametrize('path', DOCS)
def test_relative_links_resolve(path):
    """Every relative link (``[text](target)``, ``![](image)``) of README.md, CONTRIBUTING.md and docs/*.md names an
    existing file, relative to the page, and its ``#anchor`` (if any) a heading of that page."""
    text = re.sub(r'^```.*?^```', '', read(path), flags=re.S | re.M)
    links = re.findall(r'\]\(([^)\s]+)\)', text)
    bad = []
    for link in links:
        if re.match(r'[a-z]+:', link):
            continue
        target, _, anchor = link.partition('#')
        file = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
        if not os.path.exists(os.path.join(ROOT, file)):
            bad.append(f'{link}: no file {file}')
        elif anchor and file.endswith('.md') and anchor not in anchors(file):
            bad.append(f'{link}: no heading #{anchor} in {file}')
    assert not bad, f'{path}: ' + '; '.join(bad)


@pytest.mark.slow
def test_python_api_example_runs():
    code = re.search(r'```python\n(.*?)```', read('docs/usage.md')[read('docs/usage.md').index('## Python API'):],
                     flags=re.S).group(1)
    scope = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(code, 'docs/usage.md', 'exec'), scope)
    finally:
        os.chdir(cwd)
    assert scope['x'].shape == (16, 1, 28, 28) and scope['nfe'] == 20
