"""Class coverage of MNIST samples, by a classifier instead of by eye: which digits a sample set contains, in what
shares, and how many are classified confidently.  This is the objective half of the CPU-trained models' quality bar
("clearly recognisable digits of all ten classes"); Clean-FID / KID are the other half.

    python -m evaluation.classes runs/study/a_curves/<sha8>/vanilla_1000it --data $PDS_DATA/mnist

The classifier is a small CNN (two 3x3 convolutions, max pooling, two linear layers; 98.2 % on the MNIST test set
after two epochs here) trained once on the 60,000 training images with a fixed seed and cached (default
``~/.cache/pds/mnist_classifier.pt``, keyed by the recipe); its test accuracy is printed and stored with it.  A
sample set is read from a ``--mode sample`` / ``--mode eval`` workdir (``batches/batch_*.npz``, uint8 images) or
an ``.npz`` / ``.npy`` of uint8 images.  Reported: the share of each class, the share classified with probability
>= 0.9 ("confident"), and the total-variation distance between the class shares and the MNIST test set's.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from data.readers import DataError, find_idx, read_idx

RECIPE = dict(arch='cnn32-64-128', epochs=2, batch=128, lr=1e-3, seed=0)
CONFIDENT = 0.9


class ClassesError(ValueError):
    pass


def load_mnist(folder, split):
    """MNIST images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` from an IDX folder or torchvision root."""
    try:
        x = read_idx(find_idx(folder, split, 'images', 'MNIST'))
        y = read_idx(find_idx(folder, split, 'labels', 'MNIST'))
    except DataError as e:
        raise ClassesError(str(e)) from None
    if len(x) != len(y):
        raise ClassesError(f"'{folder}' {split}: {len(x)} images but {len(y)} labels")
    return np.asarray(x), y.astype(np.int64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.fc1, self.fc2 = nn.Linear(64 * 12 * 12, 128), nn.Linear(128, 10)

    def forward(self, x):                           # x: (N, 1, 28, 28) in [0, 1]
        h = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def _tensor(images):
    return torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.).reshape(-1, 1, 28, 28)


def train(folder, epochs=RECIPE['epochs'], limit=None, seed=RECIPE['seed'], log=print):
    """The classifier trained on MNIST's training images (the first ``limit`` if given); returns (net, test acc)."""
    x, y = load_mnist(folder, 'train')
    if limit:
        x, y = x[:limit], y[:limit]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=RECIPE['lr'])
    xt, yt = _tensor(x), torch.from_numpy(y)
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), RECIPE['batch']):
            b = perm[i:i + RECIPE['batch']]
            loss = F.cross_entropy(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        log(f'classifier epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}')
    xs, ys = load_mnist(folder, 'test')
    acc = float((predict(net, xs).argmax(1) == ys).mean())
    return net, acc


@torch.inference_mode()
def predict(net, images, batch=500):
    """Class probabilities (N, 10) of uint8 images (N, 28, 28[, 1]) or (N, 1, 28, 28)."""
    net.eval()
    x = _tensor(images)
    return np.concatenate([F.softmax(net(x[i:i + batch]), 1).numpy() for i in range(0, len(x), batch)])


def load_or_train(folder, cache=None, log=print):
    cache = cache or os.path.join(os.path.expanduser('~'), '.cache', 'pds', 'mnist_classifier.pt')
    if os.path.isfile(cache):
        state = torch.load(cache, map_location='cpu', weights_only=True)
        if state.get('recipe') == json.dumps(RECIPE, sort_keys=True):
            net = Net()
            net.load_state_dict(state['net'])
            return net, state['test_accuracy']
    log(f'training the MNIST classifier once ({RECIPE["epochs"]} epochs; cached in {cache})')
    net, acc = train(folder, log=log)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = cache + '.tmp'
    torch.save({'net': net.state_dict(), 'test_accuracy': acc, 'recipe': json.dumps(RECIPE, sort_keys=True)}, tmp)
    os.replace(tmp, cache)
    return net, acc


def read_samples(path):
    """uint8 images (N, 28, 28) of a sample workdir (batches/batch_*.npz) or an .npz / .npy file."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(glob.escape(path), 'batches', 'batch_*.npz')))
        if not files:
            raise ClassesError(f"'{path}' has no batches/batch_*.npz: expected a --mode sample or eval workdir")
        images = np.concatenate([np.load(f)['images'] for f in files])
    elif path.endswith('.npz'):
        with np.load(path) as d:
            key = 'images' if 'images' in d else d.files[0]
            images = d[key]
    elif path.endswith('.npy'):
        images = np.load(path)
    else:
        raise ClassesError(f"'{path}': expected a sample workdir, an .npz or an .npy of uint8 images")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.size % 784 or images.size == 0:
        raise ClassesError(f"'{path}': expected uint8 MNIST images of 28 x 28, got {images.dtype} {images.shape}")
    return images.reshape(-1, 28, 28)


def coverage(probs, reference_labels=None):
    """{'shares': per-class share of the argmax, 'confident': share with max prob >= CONFIDENT, 'tv': total
    variation distance to the reference labels' shares (uniform if None), 'n'}."""
    n = len(probs)
    shares = np.bincount(probs.argmax(1), minlength=10) / n
    ref = (np.full(10, 0.1) if reference_labels is None
           else np.bincount(reference_labels, minlength=10) / len(reference_labels))
    return dict(n=n, shares=shares, confident=float((probs.max(1) >= CONFIDENT).mean()),
                tv=float(0.5 * np.abs(shares - ref).sum()))


def report(name, cov):
    shares = ' '.join(f'{d}:{100 * s:4.1f}' for d, s in enumerate(cov['shares']))
    return (f"{name}: {cov['n']} samples; class shares % {shares}; confident (p >= {CONFIDENT}) "
            f"{100 * cov['confident']:.1f} %; TV distance to the test set's shares {cov['tv']:.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m evaluation.classes', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('samples', nargs='+', help='sample workdirs or .npz / .npy files of uint8 images')
    p.add_argument('--data', default=os.path.join(os.environ.get('PDS_DATA', ''), 'mnist'),
                   help='the MNIST IDX folder (default $PDS_DATA/mnist)')
    p.add_argument('--cache', default=None)
    args = p.parse_args(argv)
    try:
        if not os.path.isdir(args.data):
            raise ClassesError(f"--data '{args.data}' is not a folder: expected the MNIST IDX files (set PDS_DATA)")
        net, acc = load_or_train(args.data, args.cache, log=lambda m: print(m, file=sys.stderr))
        _, test_labels = load_mnist(args.data, 'test')
        print(f'classifier: test accuracy {100 * acc:.2f} % (MNIST test set)')
        real = coverage(predict(net, load_mnist(args.data, 'test')[0]), test_labels)
        print(report('MNIST test images', real))
        for path in args.samples:
            print(report(path, coverage(predict(net, read_samples(path)), test_labels)))
    except (ClassesError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
