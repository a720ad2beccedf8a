"""SVHN 32x32 colour digits, 73,257/26,032: Bernoulli per channel level (or grey, or Gaussian).

House-number digits of Netzer et al. (2011), 10 classes.

Files: the published "format 2" files ``train_32x32.mat`` (73,257 digits) and
``test_32x32.mat`` (26,032 digits) in ``DIR/svhn/`` (or directly in ``DIR``, where
``torchvision.datasets.SVHN`` puts them). Missing files are downloaded with
``torchvision.datasets.SVHN`` (into a scratch folder, then moved); their MD5 checksums, the ones
torchvision publishes with its ``SVHN`` class, are verified on every load. Reading them needs
scipy (``pip install scipy``). The ``extra`` set is not used.

Protocol: the official split, 73,257 training and 26,032 test digits. Each
file holds ``X`` of shape (32, 32, 3, N), uint8, and ``y`` of shape (N, 1) with the digit 0
labelled 10; labels here are the digits 0-9. Pixels are channel levels scaled to [0, 1].

Colour (option ``colour``): ``"colour"`` (default) keeps the three channels, flattened plane
by plane to 3,072 values, each scored by the data set's likelihood (Bernoulli on the level of
one channel by default, ``likelihood="gaussian"`` on request); ``"grey"`` converts to 1,024
grey levels first. See :mod:`pyro_dgm.data.images`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.data.files import PublishedFile, obtain, read_mat
from pyro_dgm.data.images import images_to_dataset
from pyro_dgm.errors import PyroDGMError

URL = "http://ufldl.stanford.edu/housenumbers/"
MD5_SOURCE = "torchvision.datasets.SVHN.split_list"
FILES = {
    "train": PublishedFile("train_32x32.mat", URL + "train_32x32.mat", "svhn",
                           "e26dedcc434d2e4c54c9b2d4a06d8373", "md5", MD5_SOURCE),
    "test": PublishedFile("test_32x32.mat", URL + "test_32x32.mat", "svhn",
                          "eb5a983be6a315427106f1b164d9cef3", "md5", MD5_SOURCE),
}


def _torchvision_fetch(split: str):
    """A fetch that downloads one split with ``torchvision.datasets.SVHN``."""
    def fetch(scratch: Path) -> None:
        import torchvision.datasets

        torchvision.datasets.SVHN(root=str(scratch), split=split, download=True)
    return fetch


def read_svhn(path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 3, 32, 32) uint8, labels (N,) int64 in 0-9)`` of an SVHN ``.mat`` file."""
    arrays = read_mat(path, ("X", "y"))
    images, labels = torch.as_tensor(arrays["X"]), torch.as_tensor(arrays["y"]).reshape(-1)
    if (images.dim() != 4 or tuple(images.shape[:3]) != (32, 32, 3)
            or images.dtype != torch.uint8 or labels.shape != images.shape[3:]):
        raise PyroDGMError(f"{path} holds X of shape {tuple(images.shape)} and y of shape "
                           f"{tuple(labels.shape)}; expected (32, 32, 3, N) uint8 and (N, 1).")
    return images.permute(3, 2, 0, 1).contiguous(), labels.long() % 10


def load_svhn(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
              colour: str = "colour", likelihood: str = "bernoulli") -> Dataset:
    """Return the official training (73,257) or test (26,032) split of SVHN."""
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    path = obtain(FILES[split], data_dir, _torchvision_fetch(split))
    images, labels = read_svhn(path)
    return images_to_dataset(
        "svhn", images.float() / 255.0, labels, colour=colour, likelihood=likelihood,
        binarize=binarize, seed=seed, info={"split": split, "protocol": "official",
                                            "path": str(path), "colour": colour})
