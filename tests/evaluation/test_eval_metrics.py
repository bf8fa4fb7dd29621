"""FID / KID through clean-fid's pipeline with the stand-in features: identity, growth with a shift, grayscale,
and dataset images taking exactly the path of image files."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation import metrics
from evaluation.features import EvalError, StandinFeatures, build_extractor
from tests.evaluation.eval_helpers import random_images


def _write_pngs(folder, images):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f'{i}.png'))
    return [os.path.join(folder, f'{i}.png') for i in range(len(images))]


def _smooth_images(n, size=32, seed=0):
    """Random smooth colour images (blobs), so that a brightness shift moves the features but stays in range."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.uniform(40, 200, size=(n, 3, 8, 8))).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope='module')
def standin():
    return build_extractor('standin', 'clean', 'cpu')[0]


@pytest.mark.slow
def test_fid_against_itself_is_zero_and_grows_with_a_shift(tmp_path, standin):
    images = _smooth_images(120)
    base = metrics.files_features(_write_pngs(str(tmp_path / 'base'), images), standin, progress=False)
    assert base.shape == (120, StandinFeatures.dims) and base.dtype == np.float32
    mu, sigma = metrics.statistics(base)
    assert abs(metrics.fid_from_stats(mu, sigma, mu, sigma)) < 1e-6

    fids, kids = [], []
    for shift in (4, 16, 48):
        shifted = np.clip(images.astype(int) + shift, 0, 255).astype(np.uint8)
        feats = metrics.files_features(_write_pngs(str(tmp_path / f's{shift}'), shifted), standin, progress=False)
        fids.append(metrics.fid_from_stats(*metrics.statistics(feats), mu, sigma))
        kids.append(metrics.kid_from_feats(feats, base, seed=0))
    assert 0 < fids[0] < fids[1] < fids[2], fids
    assert kids[0] < kids[1] < kids[2], kids
    # another draw of the same distribution is much closer than the large shift
    other = metrics.files_features(_write_pngs(str(tmp_path / 'other'), _smooth_images(120, seed=5)), standin,
                                   progress=False)
    assert metrics.fid_from_stats(*metrics.statistics(other), mu, sigma) < fids[2] / 4


def test_kid_is_seeded_and_leaves_numpy_state_alone(standin):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(40, 8)) + 0.5
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    k1 = metrics.kid_from_feats(a, b, seed=3)
    assert np.random.random() == before
    assert metrics.kid_from_feats(a, b, seed=3) == k1


def test_dataset_images_take_the_path_of_image_files(tmp_path, standin, make_dataset_config):
    """Grayscale dataset items (open_dataset) give exactly the features of the same images saved as grayscale PNGs
    (clean-fid converts them to RGB), in both clean-fid modes; and RGB PNGs of the repeated channel match too."""
    from data.readers import open_dataset
    gray = random_images(6, 28, 1, seed=4)
    np.save(tmp_path / 'gray.npy', gray)
    ds = open_dataset(str(tmp_path / 'gray.npy'), make_dataset_config(28, 1), centered=False)
    for mode in ('clean', 'legacy_tensorflow'):
        from_data = metrics.dataset_features(ds, standin, mode, progress=False)
        from_png = metrics.files_features(_write_pngs(str(tmp_path / f'gray_{mode}'), gray), standin, mode,
                                          progress=False)
        rgb = metrics.files_features(_write_pngs(str(tmp_path / f'rgb_{mode}'), np.repeat(gray[..., None], 3, -1)),
                                     standin, mode, progress=False)
        np.testing.assert_array_equal(from_data, from_png)
        np.testing.assert_array_equal(from_png, rgb)
    assert not np.allclose(metrics.dataset_features(ds, standin, 'clean', progress=False),
                           metrics.dataset_features(ds, standin, 'legacy_tensorflow', progress=False))


def test_list_images_natural_order_and_errors(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / f'{i}.png')
    (tmp_path / 'notes.txt').write_text('x')
    files, fdir = metrics.list_images(str(tmp_path))
    assert [os.path.basename(f) for f in files] == ['1.png', '2.png', '10.png'] and fdir is None
    with pytest.raises(EvalError, match='does not exist'):
        metrics.list_images(str(tmp_path / 'nope'))
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(EvalError, match='no image files'):
        metrics.list_images(str(tmp_path / 'empty'))


def test_standin_is_deterministic_and_not_the_default():
    a, info = build_extractor('standin')
    b, _ = build_extractor('standin')
    x = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(a(x), b(x)) and a(x).shape == (2, 64) and info['kind'] == 'standin'
    import inspect
    from runners.evaluate import run_eval
    assert inspect.signature(run_eval).parameters['features'].default == 'inception'
    assert inspect.signature(build_extractor).parameters['features'].default == 'inception'
