"""Image-file sources: a folder of images (searched recursively, sorted relative paths) and a .zip of images (sorted
member names, one handle per worker process).  Hidden paths and ``__MACOSX`` are skipped, other extensions ignored;
each image is decoded when it is read."""
import io
import os
import zipfile

from PIL import Image

from data.common import DataError, Unreadable

IMAGE_EXTENSIONS = ('.bmp', '.jpeg', '.jpg', '.png', '.webp')


def _is_hidden(rel: str) -> bool:
    return any(part.startswith('.') or part == '__MACOSX' for part in rel.split('/'))


def _has_image_ext(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(fp, name: str) -> Image.Image:
    try:
        img = Image.open(fp)
        img.load()
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        raise Unreadable(f'{type(e).__name__}: {e}') from None
    return img


class FolderSource:
    kind = 'folder'

    def __init__(self, root: str):
        self.root = root
        files, others = [], 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for fn in filenames:
                rel = os.path.relpath(os.path.join(dirpath, fn), root).replace(os.sep, '/')
                if _is_hidden(rel):
                    continue
                if _has_image_ext(fn):
                    files.append(rel)
                else:
                    others += 1
        if not files:
            raise DataError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under '{root}' (searched recursively; "
                f'{others} file(s) with other extensions ignored); expected a folder of images, a .zip of images, '
                'a .npz/.npy array, or MNIST-style IDX files')
        self.files = sorted(files)

    def __len__(self):
        return len(self.files)

    def name(self, i):
        return self.files[i]

    def full_name(self, i):
        return os.path.join(self.root, self.files[i])

    def load(self, i):
        path = self.full_name(i)
        try:
            with open(path, 'rb') as f:
                return decode_image(f, path)
        except OSError as e:
            raise Unreadable(f'{type(e).__name__}: {e}') from None

    def describe(self):
        return f'folder of {len(self.files)} image files (sorted relative paths)'


class ZipSource:
    kind = 'zip'

    def __init__(self, path: str):
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"cannot open '{path}' as a zip archive ({type(e).__name__}: {e}); "
                            'expected a .zip of png/jpg/jpeg/webp/bmp images') from None
        names = [zi.filename for zi in infos if not zi.is_dir()]
        files = sorted(n for n in names if _has_image_ext(n) and not _is_hidden(n))
        if not files:
            raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in zip '{path}' "
                            f'({len(names)} other member(s) ignored)')
        self.files = files
        self._zf, self._pid = None, None

    def __len__(self):
        return len(self.files)

    def name(self, i):
        return self.files[i]

    def full_name(self, i):
        return f'{self.path}:{self.files[i]}'

    def _handle(self):
        if self._zf is None or self._pid != os.getpid():   # one handle per (worker) process
            self._zf, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zf

    def load(self, i):
        try:
            raw = self._handle().read(self.files[i])
        except Exception as e:
            raise Unreadable(f'{type(e).__name__}: {e}') from None
        return decode_image(io.BytesIO(raw), self.full_name(i))

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_zf'], state['_pid'] = None, None
        return state

    def describe(self):
        return f'zip of {len(self.files)} image files (sorted member names)'
