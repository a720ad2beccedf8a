"""MNIST's fixed binarization of Larochelle & Murray (2011), the "statically binarized MNIST".

Files: ``binarized_mnist_train.amat`` (50,000 digits), ``binarized_mnist_valid.amat``
(10,000) and ``binarized_mnist_test.amat`` (10,000), published by Hugo Larochelle at
http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/ and looked for in
``DIR/binarized_mnist/`` (or directly in ``DIR``); missing files are downloaded from there (into
a scratch folder, then moved). Their SHA-256 checksums, as recorded by TensorFlow Datasets
(``binarized_mnist/checksums.tsv``), are verified on every load.

Format: text, one digit per line, 784 values ``0`` or ``1`` separated by spaces, row by row.
Protocol (``load_dataset("mnist", split, binarize="static", protocol="binarized")``): the 50,000
training digits train and the 10,000 test digits are held out (the validation file is not used);
no labels are published with these files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyro_dgm.data.files import PublishedFile, obtain
from pyro_dgm.errors import PyroDGMError

URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
SHA256_SOURCE = "tensorflow_datasets binarized_mnist/checksums.tsv"
PIXELS = 784
FILES = {
    "train": PublishedFile("binarized_mnist_train.amat", URL + "binarized_mnist_train.amat",
                           "binarized_mnist",
                           "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
                           "sha256", SHA256_SOURCE),
    "valid": PublishedFile("binarized_mnist_valid.amat", URL + "binarized_mnist_valid.amat",
                           "binarized_mnist",
                           "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
                           "sha256", SHA256_SOURCE),
    "test": PublishedFile("binarized_mnist_test.amat", URL + "binarized_mnist_test.amat",
                          "binarized_mnist",
                          "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
                          "sha256", SHA256_SOURCE),
}


def read_amat(path) -> torch.Tensor:
    """The binary images of an ``.amat`` file as a float32 tensor (N, 784) of 0s and 1s.

    Every line must hold 784 values, each ``0`` or ``1``, separated by spaces; anything else
    is refused with one sentence.
    """
    path = Path(path)
    characters = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    is_digit = (characters == ord("0")) | (characters == ord("1"))
    is_blank = np.isin(characters, np.frombuffer(b" \r\n", dtype=np.uint8))
    line_ends = np.flatnonzero(characters == ord("\n"))
    if characters.size and characters[-1] != ord("\n"):
        line_ends = np.append(line_ends, characters.size - 1)
    digits_per_line = np.diff(np.cumsum(is_digit)[line_ends], prepend=0)
    digits_per_line = digits_per_line[digits_per_line > 0]  # blank lines are skipped
    if (not digits_per_line.size or not bool((is_digit | is_blank).all())
            or not bool((digits_per_line == PIXELS).all())):
        raise PyroDGMError(
            f"{path} is not a binarized-MNIST .amat file of lines of {PIXELS} values 0 or 1; "
            f"it is corrupt or truncated, download it again from {URL}.")
    values = characters[is_digit] - ord("0")
    return torch.from_numpy(values.reshape(-1, PIXELS).astype(np.float32))


def read_binarized_split(split: str, data_dir) -> tuple[torch.Tensor, dict]:
    """``(x (N, 784), info)`` of the ``"train"`` (50,000) or ``"test"`` (10,000) split."""
    path = obtain(FILES[split], data_dir)
    x = read_amat(path)
    return x, {"protocol": "binarized", "n_total": x.shape[0], "path": str(path)}
