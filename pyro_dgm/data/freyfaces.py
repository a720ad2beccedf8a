"""Frey faces: 1,965 grey 28x20 images of one man's face, 1,765/200; continuous, Gaussian.

The file this loader reads is ``freyfaces/freyfaces.npy`` (or ``freyfaces.npy``) in a data
folder: a uint8 array of shape (1965, 560), each row one image flattened row by row. The
data come from the repositories of the VampPrior and Sylvester-flow papers as a pickle
(``freyfaces.pkl``); convert that pickle once to ``.npy`` so that loading it runs no code.

The pixels are checked on every load against ``PIXELS_SHA256``, the SHA-256 of the 1965 x 560
uint8 values (not of the file, whose header numpy may write differently): the digest of the
copy converted from the published pickle that lies in the project's shared data folder. No
checksum of the pickle itself is published.

Split: the images are permuted with ``torch.randperm(1965, generator=torch.Generator().manual_seed(0))``;
the last 200 indices of that permutation are held out as ``"test"``, the first 1,765 are
``"train"``. Pixels are scaled to [0, 1] and modelled as continuous (Gaussian) data; there
are no labels, and no binarization.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_choice, find_file, resolve_data_dirs
from pyro_dgm.errors import PyroDGMError

IMAGE_SHAPE = (28, 20)
N_IMAGES = 1965
N_TEST = 200
SPLIT_SEED = 0
CANDIDATES = ["freyfaces/freyfaces.npy", "freyfaces.npy"]
PIXELS_SHA256 = "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78"


def _how_to_get(data_dir) -> str:
    """A clause saying where the file comes from and where to put it."""
    target = resolve_data_dirs(data_dir)[0] / CANDIDATES[0]
    return (
        "the file comes as a pickle (freyfaces.pkl) from the VampPrior and Sylvester-flow "
        "papers' repositories, so load that pickle once and save its (1965, 560) uint8 array "
        f"with numpy.save as {target}"
    )


def read_freyfaces(path) -> np.ndarray:
    """Read and check the (1965, 560) uint8 array of Frey faces, refusing pickled objects."""
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise PyroDGMError(
            f"could not read {path} as a plain .npy array ({error}); expected a uint8 array "
            f"of shape ({N_IMAGES}, 560) saved with numpy.save."
        ) from None
    if not isinstance(images, np.ndarray):  # an .npz archive, for instance
        raise PyroDGMError(f"{path} holds several arrays; expected one array saved with numpy.save.")
    expected_shape = (N_IMAGES, IMAGE_SHAPE[0] * IMAGE_SHAPE[1])
    if images.shape != expected_shape or images.dtype != np.uint8:
        raise PyroDGMError(
            f"{path} holds a {images.dtype} array of shape {images.shape}; expected the Frey "
            f"faces as uint8 of shape {expected_shape}."
        )
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
    if digest != PIXELS_SHA256:
        raise PyroDGMError(
            f"the pixels in {path} have SHA-256 {digest}, not {PIXELS_SHA256} of the published "
            f"Frey faces; the file is corrupt or another array, convert freyfaces.pkl again."
        )
    return images


def freyfaces_split_indices(split: str) -> torch.Tensor:
    """Return the row indices of a split: the last 200 of a seeded permutation are the test split."""
    permutation = torch.randperm(N_IMAGES, generator=torch.Generator().manual_seed(SPLIT_SEED))
    if split == "train":
        return permutation[:-N_TEST]
    return permutation[-N_TEST:]


def load_freyfaces(
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
) -> Dataset:
    """Return the training (1,765 images) or test (200 images) split of the Frey faces.

    ``seed`` is unused: the split is fixed. ``binarize`` may only be None or ``"none"``,
    since the faces are modelled as continuous data.
    """
    check_choice(split, SPLITS, "split")
    if binarize not in (None, "none"):
        raise PyroDGMError(
            f"the Frey faces are continuous data and cannot be binarized (got binarize="
            f"{binarize!r}); expected binarize 'none'."
        )
    path = find_file(CANDIDATES, data_dir, _how_to_get(data_dir))
    indices = freyfaces_split_indices(split)
    pixels = torch.from_numpy(read_freyfaces(path)).float() / 255.0
    return Dataset(
        name="freyfaces",
        x=pixels[indices],
        y=None,
        image_shape=IMAGE_SHAPE,
        likelihood="gaussian",
        binarize="none",
        info={"split": split, "n_total": N_IMAGES, "indices": indices, "path": str(path)},
    )
