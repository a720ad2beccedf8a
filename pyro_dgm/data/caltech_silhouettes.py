"""Caltech 101 Silhouettes 28x28 (Marlin et al. 2010), split 1, 4,100/2,307: binary, Bernoulli.

File: ``caltech101_silhouettes_28_split1.mat``, published by Benjamin Marlin
(https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat) and used as it
is by the VampPrior and Sylvester-flow papers; looked for in ``DIR/caltech101-silhouettes/`` (or
directly in ``DIR``) and downloaded from there when missing (into a scratch folder, then
moved). Reading it needs scipy (``pip install scipy``). No checksum is published for it, so its
structure is checked instead: ``train_data`` (4,100 x 784), ``val_data`` (2,264 x 784) and
``test_data`` (2,307 x 784) of 0s and 1s, and their ``*_labels`` (N x 1, classes 1-101).

Protocol: the published split 1: 4,100 training and 2,307 test images (the 2,264 validation
images are not used). Each row is one image stored column by column (MATLAB order), transposed
here to rows; in the file the object is 0 on a background of 1, so pixels are inverted
(1 - value) as in the VampPrior code: 1 marks the object. The data are binary already:
``binarize`` defaults to ``"none"``. Labels: the classes 0-100.
"""

from __future__ import annotations

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.data.files import PublishedFile, obtain, read_mat
from pyro_dgm.data.images import images_to_dataset
from pyro_dgm.data.omniglot import matlab_images
from pyro_dgm.errors import PyroDGMError

FILE = PublishedFile(
    "caltech101_silhouettes_28_split1.mat",
    "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat",
    "caltech101-silhouettes", checksum=None)
SIZES = {"train": 4_100, "test": 2_307}
N_CLASSES = 101


def read_silhouettes(path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 28, 28) of 0/1 with 1 on the object, labels (N,) in 0-100)`` of one split."""
    images_key, labels_key = f"{split}_data", f"{split}_labels"
    arrays = read_mat(path, (images_key, labels_key))
    pixels = torch.as_tensor(arrays[images_key], dtype=torch.float32)
    labels = torch.as_tensor(arrays[labels_key]).reshape(-1).long()
    n = SIZES[split]
    binary = bool(((pixels == 0) | (pixels == 1)).all())
    classes_ok = labels.numel() == n and bool(((labels >= 1) & (labels <= N_CLASSES)).all())
    if tuple(pixels.shape) != (n, 784) or not binary or not classes_ok:
        raise PyroDGMError(
            f"{path} holds {images_key} of shape {tuple(pixels.shape)} and {labels_key} of "
            f"{labels.numel()} values; the published file has ({n}, 784) binary pixels and {n} "
            f"classes in 1-{N_CLASSES}: download it again from {FILE.url}.")
    return 1.0 - matlab_images(pixels.T), labels - 1


def load_caltech_silhouettes(split: str, data_dir=None, binarize: str | None = None,
                             seed: int = 0) -> Dataset:
    """Return the training (4,100) or test (2,307) images of Caltech 101 Silhouettes, split 1."""
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    path = obtain(FILE, data_dir)
    images, labels = read_silhouettes(path, split)
    return images_to_dataset("caltech101-silhouettes", images, labels, binarize=binarize,
                             seed=seed, info={"split": split, "protocol": "split1",
                                              "path": str(path)})
