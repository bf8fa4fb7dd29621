"""data.readers: folders / zip / npz / npy through the crop rules, and one test per error."""
import gzip
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from data import BadItem, DataError, DataWarning, make_loader, open_dataset

BICUBIC = T.InterpolationMode.BICUBIC


def _save(path, arr, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return path


def _gradient(h, w, seed=0):
    """Smooth RGB uint8 image with some texture (bicubic would show any misplaced crop)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([(yy * 255 // max(h - 1, 1)), (xx * 255 // max(w - 1, 1)), ((yy + 2 * xx) % 97) * 2], -1)
    a = a + rng.integers(0, 8, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def _ref(pil, transform):
    return T.ToTensor()(transform(pil.convert('RGB')))


# ------------------------------------------------------------------------------------------------ folders + crops

def test_folder_none_crop_native_and_resized(tmp_path, make_config):
    rng = np.random.default_rng(0)
    arrs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(arrs):
        _save(str(tmp_path / f'{i}.png'), a)
    ds = open_dataset(str(tmp_path), make_config('T', 64, 3, 'none'))
    assert len(ds) == 3
    for i, a in enumerate(arrs):
        x = ds[i]
        assert x.dtype == torch.float32 and x.shape == (3, 64, 64)
        torch.testing.assert_close(x, torch.from_numpy(a).permute(2, 0, 1).float() / 255, rtol=0, atol=0)
    small = open_dataset(str(tmp_path), make_config('T', 32, 3, 'none'))
    ref = _ref(Image.fromarray(arrs[1]), T.Resize((32, 32), BICUBIC))
    torch.testing.assert_close(small[1], ref, rtol=0, atol=0)
    centred = open_dataset(str(tmp_path), make_config('T', 64, 3, 'none', centered=True))
    torch.testing.assert_close(centred[0], ds[0] * 2 - 1)
    assert centred[0].min() < -0.9 and centred[0].max() > 0.9


def test_folder_order_is_sorted_recursive_and_ignores_other_files(tmp_path, make_config):
    names = ['b/1.png', 'a/2.jpg', 'a/10.PNG', 'c.bmp', 'a/sub/0.webp']
    for v, n in enumerate(names):
        val = 10 + 40 * v
        a = np.full((8, 8, 3), val, np.uint8)
        p = str(tmp_path / n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        Image.fromarray(a).save(p, format={'.png': 'PNG', '.jpg': 'JPEG', '.bmp': 'BMP',
                                           '.webp': 'WEBP'}[os.path.splitext(n)[1].lower()],
                                **({'lossless': True} if n.endswith('webp') else {}))
    (tmp_path / 'a' / 'labels.txt').write_text('ignored')
    (tmp_path / '.hidden').mkdir()
    _save(str(tmp_path / '.hidden' / 'x.png'), np.zeros((8, 8, 3), np.uint8))
    ds = open_dataset(str(tmp_path), make_config('T', 8, 3, 'none'))
    expected = sorted(names)                          # 'a/10.PNG' < 'a/2.jpg' < 'a/sub/0.webp' < 'b/1.png' < 'c.bmp'
    assert [ds.name(i) for i in range(len(ds))] == expected
    for i, n in enumerate(expected):
        val = 10 + 40 * names.index(n)
        assert abs(float(ds[i].mean()) * 255 - val) < 2.0, n   # jpeg is lossy


def test_lsun_crop_keeps_the_centre(tmp_path, make_config):
    # 256 x 320 (landscape) and 320 x 256 (portrait): Resize(256) is a no-op, CenterCrop(256) drops 32 px each side
    a = np.full((256, 320, 3), 30, np.uint8)
    a[:, 32:288] = (200, 100, 50)
    _save(str(tmp_path / 'imgs' / '0.png'), a)
    _save(str(tmp_path / 'imgs' / '1.png'), np.ascontiguousarray(a.transpose(1, 0, 2)))
    ds = open_dataset(str(tmp_path / 'imgs'), make_config('LSUN', 256, 3, 'lsun'))
    expected = torch.tensor([200, 100, 50], dtype=torch.float32).view(3, 1, 1).expand(3, 256, 256) / 255
    for i in range(2):
        assert ds[i].shape == (3, 256, 256)
        torch.testing.assert_close(ds[i], expected, rtol=0, atol=0)
    g = _gradient(256, 320, seed=1)
    _save(str(tmp_path / 'g' / 'g.png'), g)
    ds = open_dataset(str(tmp_path / 'g'), make_config('LSUN', 64, 3, 'lsun'))
    ref = _ref(Image.fromarray(g), T.Compose([T.Resize(64, BICUBIC), T.CenterCrop(64)]))
    assert ds[0].shape == (3, 64, 64)
    torch.testing.assert_close(ds[0], ref, rtol=0, atol=0)


def test_celeba_crop_is_centercrop140_then_resize(tmp_path, make_config):
    # CelebA aligned images are 218 x 178; the central 140 x 140 starts at (39, 19)
    a = np.full((218, 178, 3), 250, np.uint8)
    a[39:179, 19:159] = (20, 120, 220)
    _save(str(tmp_path / 'c' / '000001.jpg'.replace('.jpg', '.png')), a)
    ds = open_dataset(str(tmp_path / 'c'), make_config('CELEBA', 64, 3, 'celeba'))
    expected = torch.tensor([20, 120, 220], dtype=torch.float32).view(3, 1, 1).expand(3, 64, 64) / 255
    torch.testing.assert_close(ds[0], expected, rtol=0, atol=0)
    g = _gradient(218, 178, seed=2)
    _save(str(tmp_path / 'g' / 'g.png'), g)
    for size in (32, 64):
        ds = open_dataset(str(tmp_path / 'g'), make_config('CELEBA', size, 3, 'celeba'))
        ref = _ref(Image.fromarray(g), T.Compose([T.CenterCrop(140), T.Resize(size, BICUBIC)]))
        assert ds[0].shape == (3, size, size)
        torch.testing.assert_close(ds[0], ref, rtol=0, atol=0)


def test_1024_images_to_256(tmp_path, make_config):
    for i in range(2):
        _save(str(tmp_path / f'{i:05d}.png'), _gradient(1024, 1024, seed=i))
    for crop in ('lsun', 'none'):
        ds = open_dataset(str(tmp_path), make_config('FFHQ', 256, 3, crop))
        assert len(ds) == 2
        x = ds[1]
        assert x.shape == (3, 256, 256)
        ref = _ref(Image.open(tmp_path / '00001.png'), T.Resize((256, 256), BICUBIC))
        torch.testing.assert_close(x, ref, rtol=0, atol=0)


def test_rgb_to_grayscale_when_config_asks_one_channel(tmp_path, make_config):
    g = _gradient(16, 16, seed=3)
    _save(str(tmp_path / 'x.png'), g)
    ds = open_dataset(str(tmp_path), make_config('T', 16, 1, 'none'))
    ref = torch.from_numpy(np.array(Image.fromarray(g).convert('L'))).float()[None] / 255
    torch.testing.assert_close(ds[0], ref, rtol=0, atol=0)
    rgba = np.concatenate([g, np.full((16, 16, 1), 7, np.uint8)], -1)
    _save(str(tmp_path / 'r' / 'a.png'), rgba, 'RGBA')
    ds = open_dataset(str(tmp_path / 'r'), make_config('T', 16, 3, 'none'))
    torch.testing.assert_close(ds[0], torch.from_numpy(g).permute(2, 0, 1).float() / 255, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ zip / arrays

def test_zip_matches_folder_and_loader_workers(tmp_path, make_config):
    folder = tmp_path / 'f'
    for i, sub in enumerate(['x/b.png', 'x/a.png', 'y.jpg', 'z/c.png']):
        _save(str(folder / sub), _gradient(24, 24, seed=i))
    zpath = tmp_path / 'imgs.zip'
    with zipfile.ZipFile(zpath, 'w') as zf:
        for sub in ['z/c.png', 'y.jpg', 'x/a.png', 'x/b.png']:      # stored out of order
            zf.write(folder / sub, sub)
        zf.writestr('readme.txt', 'ignored')
        zf.writestr('__MACOSX/x/._a.png', b'junk')
    cfg = make_config('T', 16, 3, 'none')
    fds, zds = open_dataset(str(folder), cfg), open_dataset(str(zpath), cfg)
    assert [zds.name(i) for i in range(len(zds))] == ['x/a.png', 'x/b.png', 'y.jpg', 'z/c.png']
    assert [fds.name(i) for i in range(len(fds))] == [zds.name(i) for i in range(len(zds))]
    for i in range(len(fds)):
        torch.testing.assert_close(fds[i], zds[i], rtol=0, atol=0)
    batches0 = list(make_loader(zds, batch_size=3, num_workers=0))
    batches2 = list(make_loader(zds, batch_size=3, num_workers=2))
    assert [b.shape[0] for b in batches0] == [3, 1]
    for a, b in zip(batches0, batches2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_npz_npy_layouts(tmp_path, make_config):
    rng = np.random.default_rng(4)
    nhwc = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / 'a.npz', images=nhwc, labels=np.arange(5))
    ds = open_dataset(str(tmp_path / 'a.npz'), make_config('T', 8, 3, 'none'))
    assert len(ds) == 5
    torch.testing.assert_close(ds[3], torch.from_numpy(nhwc[3]).permute(2, 0, 1).float() / 255, rtol=0, atol=0)

    nchw = rng.random((4, 3, 16, 16), dtype=np.float32)
    np.save(tmp_path / 'b.npy', nchw)
    ds = open_dataset(str(tmp_path / 'b.npy'), make_config('T', 16, 3, 'none'))
    torch.testing.assert_close(ds[2], torch.from_numpy(nchw[2]), rtol=0, atol=0)
    ds8 = open_dataset(str(tmp_path / 'b.npy'), make_config('T', 8, 3, 'none'))
    ref = T.functional.resize(torch.from_numpy(nchw[2]), [8, 8], interpolation=BICUBIC, antialias=True).clamp(0, 1)
    torch.testing.assert_close(ds8[2], ref)

    nhw = rng.integers(0, 256, (6, 12, 12), dtype=np.uint8)
    np.save(tmp_path / 'c.npy', nhw)
    ds = open_dataset(str(tmp_path / 'c.npy'), make_config('T', 12, 1, 'none', centered=True))
    torch.testing.assert_close(ds[5], torch.from_numpy(nhw[5]).float()[None] / 255 * 2 - 1, rtol=0, atol=0)
    # a uint8 array goes through the same PIL path as an image file
    _save(str(tmp_path / 'img' / 'x.png'), nhw[1], 'L')
    a6 = open_dataset(str(tmp_path / 'c.npy'), make_config('T', 6, 1, 'none'))[1]
    f6 = open_dataset(str(tmp_path / 'img'), make_config('T', 6, 1, 'none'))[0]
    torch.testing.assert_close(a6, f6, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ errors

def test_missing_path(tmp_path, make_config, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(str(tmp_path / 'nope'), make_config())
    monkeypatch.delenv('PDS_UNSET_VARIABLE_FOR_TEST', raising=False)
    with pytest.raises(DataError, match="unset environment variable"):
        open_dataset('$PDS_UNSET_VARIABLE_FOR_TEST/mnist', make_config())
    monkeypatch.setenv('PDS_UNSET_VARIABLE_FOR_TEST', str(tmp_path))
    np.save(tmp_path / 'a.npy', np.zeros((2, 8, 8, 3), np.uint8))
    assert len(open_dataset('$PDS_UNSET_VARIABLE_FOR_TEST/a.npy', make_config('T', 8, 3, 'none'))) == 2


def test_empty_folder(tmp_path, make_config):
    with pytest.raises(DataError, match='no image files'):
        open_dataset(str(tmp_path), make_config())
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(DataError, match=r'1 file\(s\) with other extensions'):
        open_dataset(str(tmp_path), make_config())
    zpath = tmp_path / 'e.zip'
    with zipfile.ZipFile(zpath, 'w') as zf:
        zf.writestr('a.txt', 'x')
    with pytest.raises(DataError, match='no image files'):
        open_dataset(str(zpath), make_config())


def test_bad_file_is_named(tmp_path, make_config):
    _save(str(tmp_path / 'a.png'), _gradient(8, 8))
    (tmp_path / 'b.png').write_bytes(b'this is text, not a png')
    ds = open_dataset(str(tmp_path), make_config('T', 8, 3, 'none'))
    with pytest.raises(DataError, match=r'b\.png.*skip_bad=True'):
        ds[1]
    with open(tmp_path / 'a.png', 'rb') as f:
        head = f.read(60)
    (tmp_path / 'a.png').write_bytes(head)                      # truncated: the first item fails at open
    with pytest.raises(DataError, match=r"a\.png"):
        open_dataset(str(tmp_path), make_config('T', 8, 3, 'none'))


def test_skip_bad_warns_and_loader_drops(tmp_path, make_config):
    for i in range(3):
        _save(str(tmp_path / f'{i}.png'), _gradient(8, 8, seed=i))
    (tmp_path / '1b.png').write_bytes(b'garbage')
    ds = open_dataset(str(tmp_path), make_config('T', 8, 3, 'none'), skip_bad=True)
    assert ds.name(2) == '1b.png'
    with pytest.warns(DataWarning, match=r'1b\.png'):
        item = ds[2]
    assert isinstance(item, BadItem) and item.name == '1b.png'
    with pytest.warns(DataWarning):
        batches = list(make_loader(ds, batch_size=4))
    assert len(batches) == 1 and batches[0].shape == (3, 3, 8, 8)


def test_too_small(tmp_path, make_config):
    _save(str(tmp_path / 'a' / 'small.png'), _gradient(40, 50))
    with pytest.raises(DataError, match=r"small\.png.*40x50.*64"):
        open_dataset(str(tmp_path / 'a'), make_config('LSUN', 64, 3, 'lsun'))
    with pytest.raises(DataError, match=r"small\.png.*40x50.*140"):
        open_dataset(str(tmp_path / 'a'), make_config('CELEBA', 32, 3, 'celeba'))
    _save(str(tmp_path / 'b' / 'sq.png'), _gradient(20, 20))
    with pytest.raises(DataError, match=r"sq\.png.*20x20.*32x32"):
        open_dataset(str(tmp_path / 'b'), make_config('T', 32, 3, 'none'))
    with pytest.raises(DataError, match=r"small\.png.*not square"):
        open_dataset(str(tmp_path / 'a'), make_config('T', 32, 3, 'none'))
    np.save(tmp_path / 's.npy', np.zeros((2, 10, 10, 3), np.uint8))
    with pytest.raises(DataError, match=r"s\.npy\[0\].*10x10"):
        open_dataset(str(tmp_path / 's.npy'), make_config('T', 16, 3, 'none'))


def test_channel_mismatch(tmp_path, make_config):
    _save(str(tmp_path / 'g' / 'gray.png'), np.zeros((8, 8), np.uint8), 'L')
    with pytest.raises(DataError, match=r"gray\.png.*1 channel.*num_channels is 3"):
        open_dataset(str(tmp_path / 'g'), make_config('T', 8, 3, 'none'))
    np.save(tmp_path / 'g.npy', np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"g\.npy\[0\].*1 channel.*num_channels is 3"):
        open_dataset(str(tmp_path / 'g.npy'), make_config('T', 8, 3, 'none'))


def test_bad_arrays_and_config(tmp_path, make_config):
    np.save(tmp_path / 'f.npy', np.full((2, 8, 8, 3), 2.0, np.float32))
    with pytest.raises(DataError, match=r"f\.npy\[0\].*\[0, 1\]"):
        open_dataset(str(tmp_path / 'f.npy'), make_config('T', 8, 3, 'none'))
    np.save(tmp_path / 'i.npy', np.zeros((2, 8, 8, 3), np.int64))
    with pytest.raises(DataError, match='dtype int64'):
        open_dataset(str(tmp_path / 'i.npy'), make_config('T', 8, 3, 'none'))
    np.save(tmp_path / 'w.npy', np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(DataError, match=r'shape \(2, 8, 8, 5\)'):
        open_dataset(str(tmp_path / 'w.npy'), make_config('T', 8, 3, 'none'))
    np.savez(tmp_path / 'k.npz', foo=np.zeros((2, 8, 8, 3), np.uint8), bar=np.zeros(2))
    with pytest.raises(DataError, match=r"\['foo', 'bar'\]"):
        open_dataset(str(tmp_path / 'k.npz'), make_config('T', 8, 3, 'none'))
    (tmp_path / 'x.txt').write_text('x')
    with pytest.raises(DataError, match='unsupported data file'):
        open_dataset(str(tmp_path / 'x.txt'), make_config())
    np.save(tmp_path / 'ok.npy', np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="config.data.crop"):
        open_dataset(str(tmp_path / 'ok.npy'), make_config('T', 8, 3, 'center'))
    with pytest.raises(DataError, match="IDX data only"):
        open_dataset(str(tmp_path / 'ok.npy'), make_config('T', 8, 3, 'none'), split='test')


# ------------------------------------------------------------------------------------------------ public IDX helpers

def _idx_bytes(arr):
    """An IDX file of unsigned bytes, written independently of data.readers (magic 0x0800 | ndim, big-endian dims)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = (0x0800 | arr.ndim).to_bytes(4, 'big') + b''.join(int(d).to_bytes(4, 'big') for d in arr.shape)
    return head + arr.tobytes()


def test_read_idx_and_find_idx_on_a_torchvision_root(tmp_path):
    from data.readers import find_idx, read_idx
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    raw = tmp_path / 'root' / 'MNIST' / 'raw'
    raw.mkdir(parents=True)
    (raw / 't10k-images-idx3-ubyte').write_bytes(_idx_bytes(images))           # raw images, gzipped labels
    (raw / 't10k-labels-idx1-ubyte.gz').write_bytes(gzip.compress(_idx_bytes(labels)))
    ip = find_idx(str(tmp_path / 'root'), 'test', 'images')
    lp = find_idx(str(tmp_path / 'root'), 't10k', 'labels')
    assert ip.endswith('t10k-images-idx3-ubyte') and lp.endswith('t10k-labels-idx1-ubyte.gz')
    assert np.array_equal(read_idx(ip), images) and np.array_equal(read_idx(ip, mmap=False), images)
    assert np.array_equal(read_idx(lp), labels)
    with pytest.raises(DataError, match="no 'train-labels-idx1-ubyte"):
        find_idx(str(raw), 'train', 'labels')
    with pytest.raises(DataError, match='holds no MNIST-style IDX'):
        find_idx(str(tmp_path), 'test', 'images')
    bad = tmp_path / 'short-labels-idx1-ubyte.gz'
    bad.write_bytes(gzip.compress(_idx_bytes(labels)[:-2]))
    with pytest.raises(DataError, match='holds 5 bytes after its header; the header promises 7 = 7'):
        read_idx(str(bad))
    (tmp_path / 'not.idx').write_bytes(b'\x00\x00\x0d\x03' + bytes(12))        # float IDX: not ours
    with pytest.raises(DataError, match='not an IDX file of unsigned bytes'):
        read_idx(str(tmp_path / 'not.idx'))
