"""OMNIGLOT 28x28, Burda et al.'s split, 24,345/8,070; Bernoulli, binarized afresh per batch.

The split is that of Burda, Grosse & Salakhutdinov (2016, the IWAE paper).

File: ``chardata.mat``, published with the IWAE code (github.com/yburda/iwae,
``datasets/OMNIGLOT/chardata.mat``) and used as it is by the IWAE, VampPrior and SB-VAE
papers; looked for in ``DIR/omniglot/`` (or directly in ``DIR``) and downloaded from there
when missing (into a scratch folder, then moved). Reading it needs scipy
(``pip install scipy``). No checksum is published for it, so its structure is checked instead:
the arrays ``data`` (784 x 24,345) and ``testdata`` (784 x 8,070) of grey levels in [0, 1], and
the one-hot alphabet labels ``target`` and ``testtarget`` (50 x N).

Protocol: 24,345 training and 8,070 test characters, as published. Each column is one image
stored column by column (MATLAB order), transposed here to rows. Pixels are grey levels in
[0, 1]; the papers binarize them afresh for every batch, so ``binarize`` defaults to
``"dynamic"`` here (``"none"`` keeps grey levels; ``"static"`` draws once, from ``seed``).
Labels: the alphabet (0-49).
"""

from __future__ import annotations

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.data.files import PublishedFile, obtain, read_mat
from pyro_dgm.data.images import images_to_dataset
from pyro_dgm.errors import PyroDGMError

FILE = PublishedFile("chardata.mat",
                     "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",
                     "omniglot", checksum=None)
SIZES = {"train": 24_345, "test": 8_070}
KEYS = {"train": ("data", "target"), "test": ("testdata", "testtarget")}
N_ALPHABETS = 50


def matlab_images(columns: torch.Tensor, side: int = 28) -> torch.Tensor:
    """Images stored one per column, each column by column (MATLAB order), as (N, side, side)."""
    return columns.T.reshape(-1, side, side).transpose(1, 2)


def read_omniglot(path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 28, 28) float in [0, 1], alphabet labels (N,))`` of one split of chardata.mat."""
    images_key, labels_key = KEYS[split]
    arrays = read_mat(path, KEYS[split])
    pixels = torch.as_tensor(arrays[images_key], dtype=torch.float32)
    one_hot = torch.as_tensor(arrays[labels_key])
    expected = ((784, SIZES[split]), (N_ALPHABETS, SIZES[split]))
    if (tuple(pixels.shape), tuple(one_hot.shape)) != expected or not _in_unit_interval(pixels):
        raise PyroDGMError(
            f"{path} holds {images_key} of shape {tuple(pixels.shape)} and {labels_key} of shape "
            f"{tuple(one_hot.shape)}; the published file has {expected[0]} grey levels in [0, 1] "
            f"and {expected[1]}: download it again from {FILE.url}.")
    return matlab_images(pixels), one_hot.argmax(dim=0)


def _in_unit_interval(values: torch.Tensor) -> bool:
    return bool(((values >= 0) & (values <= 1)).all())


def load_omniglot(split: str, data_dir=None, binarize: str | None = None,
                  seed: int = 0) -> Dataset:
    """Return the training (24,345) or test (8,070) characters of OMNIGLOT (Burda et al.'s split)."""
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="dynamic")
    path = obtain(FILE, data_dir)
    images, labels = read_omniglot(path, split)
    return images_to_dataset("omniglot", images, labels, binarize=binarize, seed=seed,
                             info={"split": split, "protocol": "burda2016", "path": str(path)})
