"""Full-scale readers: the real digit datasets from a folder the user names.

Nothing is downloaded. Each reader looks for the files where torchvision (with
``download=False``) or the dataset's own release puts them, directly in ``data_dir`` or
in the dataset's sub-folder, and raises :class:`DataFileNotFoundError` naming the file,
every place it looked and where to get it.

| name   | files                                                        | splits |
|--------|--------------------------------------------------------------|--------|
| mnist  | ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` | train, val, test (*) |
| svhn   | ``test_32x32.mat`` (torchvision's SVHN)                      | test |
| usps   | ``usps.t.bz2`` (torchvision's USPS, libsvm format)           | test |
| mnistm | ``mnist_m/mnist_m_test/*.png`` + ``mnist_m_test_labels.txt``  | test |
| syn    | ``synth_test_32x32.mat`` (SynDigits, SVHN's .mat layout)     | test |

(*) train: the first 10,000 training images (the single-source protocol), val: the next
1,000, test: t10k.

Images come back as uint8 (N, 3, 32, 32): 28 px and 16 px digits are resized to 32,
grey ones replicated to 3 channels.
"""
from __future__ import annotations

import bz2
import gzip
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from neurn.data._cache import PathLike
from neurn.data._imaging import digit_hash, resize, to_uint8

__all__ = ["DataFileNotFoundError", "READERS", "MNIST_TRAIN_SIZE", "MNIST_VAL_SIZE"]

MNIST_TRAIN_SIZE = 10_000
MNIST_VAL_SIZE = 1_000

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class DataFileNotFoundError(FileNotFoundError):
    """A dataset file is missing; the message names it, the places searched, and
    where the dataset comes from."""


@dataclass(frozen=True)
class Reader:
    description: str
    folders: Sequence[str]  # sub-folders of data_dir searched, "" = data_dir itself
    origin: str  # where to get the files
    read_split: Callable[[Reader, Path, str], Arrays]

    def find(self, data_dir: PathLike, *filenames: str) -> Path:
        """The first of ``filenames`` found in any of the folders searched."""
        candidates = [Path(data_dir, folder, name)
                      for folder in self.folders for name in filenames]
        for path in candidates:
            if path.exists():
                return path
        looked = "\n  ".join(str(p) for p in candidates)
        raise DataFileNotFoundError(
            f"{self.description}: file {filenames[0]!r} not found; looked for:\n  {looked}\n"
            f"Get it from {self.origin}, then pass its folder as data_dir.")

    def read(self, data_dir: PathLike, split: str) -> Arrays:
        return self.read_split(self, Path(data_dir), split)


def _finish(images: np.ndarray, labels: np.ndarray) -> Arrays:
    """float (N, C, H, W) in [0, 1] -> uint8 3 x 32 x 32, int64 labels, origins."""
    origins = np.array([digit_hash(np.rint(image * 255)) for image in images],
                       dtype=np.uint64)
    if images.shape[-1] != 32:
        images = resize(images, 32)
    return to_uint8(images), labels.astype(np.int64), origins


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _read_mnist(reader: Reader, root: Path, split: str) -> Arrays:
    prefix = "t10k" if split == "test" else "train"
    files = [f"{prefix}-{kind}-ubyte" for kind in ("images-idx3", "labels-idx1")]
    images, labels = (_read_idx(reader.find(root, name, name + ".gz")) for name in files)
    if split != "test":
        start = 0 if split == "train" else MNIST_TRAIN_SIZE
        stop = MNIST_TRAIN_SIZE if split == "train" else MNIST_TRAIN_SIZE + MNIST_VAL_SIZE
        images, labels = images[start:stop], labels[start:stop]
    return _finish(images[:, None].astype(np.float32) / 255.0, labels)


def _read_svhn_mat(filename: str):
    def read(reader: Reader, root: Path, split: str) -> Arrays:
        from scipy.io import loadmat

        mat = loadmat(reader.find(root, filename))
        images = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.float32) / 255.0
        labels = mat["y"].reshape(-1).astype(np.int64) % 10  # the digit 0 is stored as 10
        return _finish(images, labels)
    return read


def _read_usps(reader: Reader, root: Path, split: str) -> Arrays:
    with bz2.open(reader.find(root, "usps.t.bz2"), "rt") as f:
        rows = [line.split() for line in f if line.strip()]
    labels = np.array([int(float(row[0])) - 1 for row in rows])  # stored as 1..10
    pixels = np.array([[float(item.split(":")[1]) for item in row[1:]] for row in rows],
                      dtype=np.float32)
    return _finish(((pixels + 1) / 2).reshape(-1, 1, 16, 16), labels)


def _read_mnistm(reader: Reader, root: Path, split: str) -> Arrays:
    from PIL import Image

    listing = reader.find(root, "mnist_m_test_labels.txt")
    folder = listing.parent / "mnist_m_test"
    names, labels = [], []
    for line in listing.read_text().splitlines():
        if line.strip():
            name, label = line.split()
            names.append(name)
            labels.append(int(label))
    images = []
    for name in names:
        path = folder / name
        if not path.exists():
            raise DataFileNotFoundError(
                f"MNIST-M: image {name!r} listed in {listing} is missing from {folder}; "
                f"re-extract the archive from {reader.origin}")
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    return _finish(np.stack(images).transpose(0, 3, 1, 2), np.array(labels))


READERS: dict[str, Reader] = {
    "mnist": Reader("MNIST", ("MNIST/raw", "mnist/MNIST/raw", ""),
                    "http://yann.lecun.com/exdb/mnist/ (or torchvision.datasets.MNIST("
                    "data_dir, download=True) on a machine with network)", _read_mnist),
    "svhn": Reader("SVHN (real, test split)", ("", "svhn", "SVHN"),
                   "http://ufldl.stanford.edu/housenumbers/ (or torchvision.datasets.SVHN("
                   "data_dir, split='test', download=True))", _read_svhn_mat("test_32x32.mat")),
    "usps": Reader("USPS (real, test split)", ("", "usps", "USPS"),
                   "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html"
                   "#usps (or torchvision.datasets.USPS(data_dir, train=False, "
                   "download=True))", _read_usps),
    "mnistm": Reader("MNIST-M (real, test split)", ("mnist_m", ""),
                     "the DANN release (Ganin & Lempitsky, http://yaroslav.ganin.net/): "
                     "mnist_m.tar.gz, extracted so mnist_m/mnist_m_test/ holds the PNGs",
                     _read_mnistm),
    "syn": Reader("SynDigits (real, test split)", ("", "SynthDigits", "syn"),
                  "the DANN release (Ganin et al., http://yaroslav.ganin.net/, "
                  "'SynNumbers'), as synth_test_32x32.mat",
                  _read_svhn_mat("synth_test_32x32.mat")),
}
