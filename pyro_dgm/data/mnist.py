"""MNIST 28x28 digits, grey levels scored as Bernoulli; protocols full, offline, binarized (static).

The digits are read from the official IDX files, with a protocol for machines without the
training set.

Files are looked for in each data folder as ``MNIST/raw/<name>`` (where torchvision puts
them), ``mnist/<name>`` and ``<name>``, each gzip-compressed (``.gz``) or not.

Protocols (option ``protocol``):

* ``"full"``: the official split, 60,000 training and 10,000 test digits. Missing files are
  downloaded with torchvision into the first data folder when a network is available.
* ``"offline"``: only the 10,000 official test digits, for machines that cannot download the
  training set. In file order they are permuted by
  ``torch.randperm(10000, generator=torch.Generator().manual_seed(0))``; the first 8,000
  indices of that permutation form the training split and the last 2,000 the held-out
  ``"test"`` split. Other results in this project depend on exactly this split. Numbers on it
  compare with each other, not with published full-MNIST tables.
* ``"binarized"``: the published fixed binarization of Larochelle & Murray (2011), 50,000
  training and 10,000 test digits without labels, the "statically binarized MNIST" of most
  of the papers' tables (files and checksums: :mod:`pyro_dgm.data.binarized_mnist`). It needs
  ``binarize="static"`` (its default).
* ``"auto"`` (default): with ``binarize="static"``, ``"binarized"`` when its ``.amat`` files
  are present; otherwise ``"full"`` when the training files are present, else ``"offline"``
  when the test files are present, else ``"full"`` (which tries the download).

The official gzip-compressed files are checked against the MD5 checksums published with them
(the ones ``torchvision.datasets.MNIST`` lists) on every load; uncompressed files, for which
no checksum is published, are checked by their IDX headers and sizes only.

Pixels are grey levels scaled to [0, 1]. By default they are kept as they are and scored with
a Bernoulli cross-entropy (as in the stick-breaking VAE authors' code); ``binarize="dynamic"``
draws new binary images for every batch and ``binarize="static"`` draws them once, from
``seed`` (under the ``"full"`` and ``"offline"`` protocols; ``"binarized"`` reads the published
draw).
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from pyro_dgm.data.core import (
    SPLITS,
    Dataset,
    binarize_once,
    check_binarize,
    check_choice,
    find_file,
    locate_file,
    resolve_data_dirs,
)
from pyro_dgm.data.binarized_mnist import FILES as BINARIZED_FILES
from pyro_dgm.data.binarized_mnist import read_binarized_split
from pyro_dgm.data.files import PublishedFile, verify
from pyro_dgm.errors import PyroDGMError

PROTOCOLS = ("auto", "full", "offline", "binarized")
IDX_UINT8 = 0x08
FILE_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
OFFLINE_TOTAL = 10_000
OFFLINE_TRAIN_SIZE = 8_000
OFFLINE_PERMUTATION_SEED = 0
SPLIT_WORDS = {"train": "training", "test": "test"}
# published with the gzip-compressed files; torchvision.datasets.MNIST.resources lists them too
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


# --------------------------------------------------------------------------- IDX files


def read_idx(path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (gzip-compressed if its name ends in ``.gz``).

    The header is two zero bytes, a type code (0x08 for uint8), the number of dimensions,
    then each dimension as a big-endian 32-bit integer; the values follow. Returns a uint8
    tensor of that shape. A truncated or corrupt file raises ``PyroDGMError`` naming it.
    """
    path = Path(path)
    content = _read_bytes(path)
    shape, header_size = _parse_idx_header(content, path)
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(content) != expected_size:
        raise PyroDGMError(
            f"IDX file {path} holds {len(content)} bytes but its header announces shape "
            f"{shape} ({expected_size} bytes); the file is truncated or corrupt, download it again."
        )
    values = np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)
    return torch.from_numpy(values.copy())


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, decompressed when its name ends in ``.gz``."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise PyroDGMError(
            f"could not read IDX file {path} ({error}); the file is missing, truncated or "
            f"corrupt, download it again."
        ) from None


def _parse_idx_header(content: bytes, path: Path) -> tuple[tuple[int, ...], int]:
    """Return (shape, header size in bytes) of an IDX file of unsigned bytes."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise PyroDGMError(
            f"{path} is not an IDX file (its first bytes are not an IDX magic number); "
            f"expected an MNIST file such as t10k-images-idx3-ubyte.gz."
        )
    type_code, n_dims = content[2], content[3]
    if type_code != IDX_UINT8:
        raise PyroDGMError(
            f"IDX file {path} has type code {type_code:#04x}; only unsigned bytes (0x08) are supported."
        )
    header_size = 4 + 4 * n_dims
    if len(content) < header_size:
        raise PyroDGMError(
            f"IDX file {path} ends inside its header; the file is truncated, download it again."
        )
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=n_dims, offset=4))
    return shape, header_size


# --------------------------------------------------------------------------- locating files


def _how_to_get(data_dir) -> str:
    """A clause saying how to put the MNIST files into the first data folder."""
    folder = resolve_data_dirs(data_dir)[0]
    return (
        f"download MNIST with torchvision.datasets.MNIST(root='{folder}', download=True), "
        f"or copy the official IDX files into {folder / 'MNIST' / 'raw'}"
    )


def _candidates(file_name: str) -> list[str]:
    """Relative paths where an MNIST file may lie, most preferred first."""
    candidates = []
    for folder in ("MNIST/raw/", "mnist/", ""):
        candidates += [f"{folder}{file_name}.gz", f"{folder}{file_name}"]
    return candidates


def _files_present(official_split: str, data_dir) -> bool:
    """Whether both the image and the label file of an official split are present locally."""
    return all(
        locate_file(_candidates(FILE_NAMES[official_split, kind]), data_dir) is not None
        for kind in ("images", "labels")
    )


def _read_official_split(official_split: str, data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images (N, 28, 28) uint8, labels (N,) uint8) of the official train or test files."""
    how_to_get = _how_to_get(data_dir)
    images_path = find_file(_candidates(FILE_NAMES[official_split, "images"]), data_dir, how_to_get)
    labels_path = find_file(_candidates(FILE_NAMES[official_split, "labels"]), data_dir, how_to_get)
    for path in (images_path, labels_path):
        verify_published(path)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise PyroDGMError(
            f"MNIST files {images_path} and {labels_path} do not match: images of shape "
            f"{tuple(images.shape)} and labels of shape {tuple(labels.shape)}; expected "
            f"(N, 28, 28) and (N,)."
        )
    return images, labels


def verify_published(path: Path) -> None:
    """Refuse an official gzip-compressed file whose MD5 differs from the published one."""
    if path.name in PUBLISHED_MD5:
        verify(path, PublishedFile(path.name, MIRROR + path.name, "MNIST/raw",
                                   PUBLISHED_MD5[path.name], "md5", "the MNIST web page"))


def _download_official_files(official_split: str, data_dir) -> None:
    """Fetch MNIST with torchvision into the first data folder; raise ``PyroDGMError`` on failure."""
    folder = resolve_data_dirs(data_dir)[0]
    try:
        import torchvision.datasets

        # into a scratch folder first, so that a failed download leaves no folders behind
        with tempfile.TemporaryDirectory() as scratch:
            torchvision.datasets.MNIST(root=scratch, train=official_split == "train",
                                       download=True)
            raw = folder / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for path in (Path(scratch) / "MNIST" / "raw").iterdir():
                shutil.move(str(path), raw / path.name)
    except Exception as error:  # no network, a proxy, a full disk: all end the same way
        missing = " and ".join(FILE_NAMES[official_split, kind] for kind in ("images", "labels"))
        searched = ", ".join(str(path) for path in resolve_data_dirs(data_dir))
        remedy = f"copy the official IDX files into {folder / 'MNIST' / 'raw'}"
        if official_split == "train":
            remedy += (
                ", or use --set protocol=offline (protocol='offline') to train and evaluate "
                "on the 10,000 test digits alone"
            )
        raise PyroDGMError(
            f"the MNIST {SPLIT_WORDS[official_split]} files ({missing}) are missing from "
            f"{searched} and downloading them with torchvision failed ({type(error).__name__}: "
            f"{_first_line(error)}); {remedy}."
        ) from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


# --------------------------------------------------------------------------- protocols


def choose_protocol(protocol: str, data_dir, binarize: str = "none") -> str:
    """Resolve ``"auto"`` from ``binarize`` and the files present; return others as they are."""
    check_choice(protocol, PROTOCOLS, "MNIST protocol")
    if protocol != "auto":
        return protocol
    if binarize == "static" and all(locate_file(published.candidates(), data_dir) is not None
                                    for published in BINARIZED_FILES.values()):
        return "binarized"
    if _files_present("train", data_dir):
        return "full"
    if _files_present("test", data_dir):
        return "offline"
    return "full"


def offline_split_indices(split: str) -> torch.Tensor:
    """Return the indices into the official test files that form a split of the offline protocol."""
    permutation = torch.randperm(
        OFFLINE_TOTAL, generator=torch.Generator().manual_seed(OFFLINE_PERMUTATION_SEED)
    )
    if split == "train":
        return permutation[:OFFLINE_TRAIN_SIZE]
    return permutation[OFFLINE_TRAIN_SIZE:]


def _load_full(split: str, data_dir) -> tuple[torch.Tensor, torch.Tensor, dict]:
    if not _files_present(split, data_dir):
        _download_official_files(split, data_dir)
    images, labels = _read_official_split(split, data_dir)
    return images, labels, {"protocol": "full", "n_total": images.shape[0]}


def _load_offline(split: str, data_dir) -> tuple[torch.Tensor, torch.Tensor, dict]:
    images, labels = _read_official_split("test", data_dir)
    if images.shape[0] != OFFLINE_TOTAL:
        raise PyroDGMError(
            f"the offline MNIST protocol needs the 10,000 official test digits, but the test "
            f"files hold {images.shape[0]}; replace them with the official t10k files."
        )
    indices = offline_split_indices(split)
    info = {"protocol": "offline", "n_total": OFFLINE_TOTAL, "indices": indices}
    return images[indices], labels[indices], info


def load_mnist(
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    protocol: str = "auto",
) -> Dataset:
    """Return the training or test split of MNIST under ``protocol`` (see the module docstring).

    ``info`` records the protocol used and, for the offline protocol, ``indices``: the
    positions in the official test files of the examples, in the order they are held.
    """
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="static" if protocol == "binarized" else "none")
    protocol = choose_protocol(protocol, data_dir, binarize)
    if protocol == "binarized":
        return _load_binarized(split, data_dir, binarize)
    loader = _load_full if protocol == "full" else _load_offline
    images, labels, info = loader(split, data_dir)
    grey_levels = images.reshape(images.shape[0], -1).float() / 255.0
    return Dataset(
        name="mnist",
        x=binarize_once(grey_levels, binarize, seed),
        y=labels.long(),
        image_shape=(28, 28),
        likelihood="bernoulli",
        binarize=binarize,
        info={"split": split, **info},
    )


def _load_binarized(split: str, data_dir, binarize: str) -> Dataset:
    """Larochelle & Murray's fixed binarization: already one static draw, without labels."""
    if binarize != "static":
        raise PyroDGMError(f"protocol 'binarized' is MNIST's published fixed binarization, so "
                           f"it takes binarize='static', not {binarize!r}.")
    x, info = read_binarized_split(split, data_dir)
    return Dataset(name="mnist", x=x, y=None, image_shape=(28, 28), likelihood="bernoulli",
                   binarize="static", info={"split": split, **info})
