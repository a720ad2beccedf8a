"""Your own arrays (tensors:FILE) or image folder (folder:PATH): Bernoulli on [0, 1] or Gaussian.

Both give the same :class:`~pyro_dgm.data.core.Dataset` as the built-in sets, so every model
that takes flat images takes them: ``pyro-dgm train vae --dataset tensors:x.npy`` or
``--dataset folder:my_images --set size=28``. A relative path is read from the current folder.

**Arrays** (``tensors:FILE``), by the file's suffix:

* ``.npy``: one array ``x``;
* ``.npz`` (``numpy.savez``) or ``.pt`` (``torch.save`` of a tensor or a dict of tensors):
  ``x`` and optional labels ``y``, or the split already made, ``x_train``, ``x_test`` (with
  optional ``y_train``, ``y_test``). A ``.pt`` file holding one tensor is ``x``.

``x`` has shape (N, D) (vectors, drawn as vectors), (N, rows, columns) (grey images) or
(N, channels, rows, columns) with 1 or 3 channels. uint8 values are grey levels 0-255 and are
divided by 255; other values are taken as they are. Pickled objects are refused (nothing in
the file is run).

**Images** (``folder:PATH``): image files (any format PIL reads: PNG, JPEG, ...) directly in
``PATH`` (unlabelled), or in one sub-folder per label (``PATH/cat/*.png``, ``PATH/dog/*.png``:
labels 0, 1, ... in the sorted order of the sub-folder names, kept in ``info["classes"]``), or
the split already made, ``PATH/train/...`` and ``PATH/test/...`` laid out either way. Options:
``size`` (``28`` or ``[rows, columns]``; default: the images' own size, which must then be the
same for all), resized with bilinear interpolation; ``colour="grey"`` (default) or
``"colour"``.

**Split**: where the file or folder does not hold one, a fixed ``test_fraction`` (default 0.1)
of the examples, chosen by ``Dataset.split(test_fraction, seed=0)``, is held out as
``"test"``, whatever the run's seed, so runs with different seeds see the same split.

**Values and likelihood**: ``likelihood="bernoulli"`` (default) needs values in [0, 1]
(grey levels); ``likelihood="gaussian"`` takes any finite values. NaN, infinite values or values
outside [0, 1] under a Bernoulli likelihood are refused with one sentence. Colour: see
:mod:`pyro_dgm.data.images`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.data.files import first_line
from pyro_dgm.data.images import images_to_dataset, vectors_to_dataset
from pyro_dgm.errors import PyroDGMError

ARRAY_SUFFIXES = (".npy", ".npz", ".pt")
SPLIT_SEED = 0


# --------------------------------------------------------------------------- the split


def _held_out(data: Dataset, split: str, test_fraction: float) -> Dataset:
    """The ``split`` part of ``data`` under the fixed held-out fraction (seed 0)."""
    train, test = data.split(test_fraction, seed=SPLIT_SEED)
    return train if split == "train" else test


def _checked_path(path, what: str, form: str) -> Path:
    if not path:
        raise PyroDGMError(f"the {what} data set needs a path: give it as --dataset {form}.")
    return Path(path).expanduser()


# --------------------------------------------------------------------------- arrays


def read_arrays(path: Path) -> dict[str, np.ndarray | torch.Tensor]:
    """The arrays of a ``.npy``, ``.npz`` or ``.pt`` file, by name (``x`` for a lone array)."""
    if path.suffix not in ARRAY_SUFFIXES:
        raise PyroDGMError(f"{path} is not a .npy, .npz or .pt file; save your arrays with "
                           f"numpy.save, numpy.savez or torch.save.")
    if not path.is_file():
        raise PyroDGMError(f"the file {path} does not exist.")
    try:
        if path.suffix == ".pt":
            content = torch.load(path, map_location="cpu", weights_only=True)
        else:
            content = np.load(path, allow_pickle=False)
            content = dict(content) if isinstance(content, np.lib.npyio.NpzFile) else content
    except Exception as error:  # a truncated file, a pickle, another format
        raise PyroDGMError(f"could not read {path} ({type(error).__name__}: "
                           f"{first_line(error)}); it must hold plain arrays saved with "
                           f"numpy.save, numpy.savez or torch.save, without pickled objects."
                           ) from None
    if isinstance(content, (np.ndarray, torch.Tensor)):
        return {"x": content}
    if isinstance(content, dict):
        return content
    raise PyroDGMError(f"{path} holds a {type(content).__name__}; expected an array, or a dict "
                       f"of arrays with keys x (and y) or x_train and x_test.")


def _split_arrays(arrays: dict, split: str, path: Path):
    """``(x, y, already_split)`` for ``split`` from the arrays of a file."""
    if "x_train" in arrays and "x_test" in arrays:
        return arrays[f"x_{split}"], arrays.get(f"y_{split}"), True
    if "x" in arrays:
        return arrays["x"], arrays.get("y"), False
    raise PyroDGMError(f"{path} holds the arrays {', '.join(sorted(arrays)) or 'none'}; expected "
                       f"x (and labels y), or x_train and x_test (and y_train, y_test).")


def _as_float(values, path: Path) -> torch.Tensor:
    """An array as float32: uint8 grey levels divided by 255, other numbers as they are."""
    if isinstance(values, np.ndarray) and values.dtype.kind not in "biuf":
        raise PyroDGMError(f"{path} holds an array of {values.dtype}; expected numbers.")
    tensor = torch.as_tensor(values)
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    return tensor.to(torch.float32)


def load_tensors(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                 path: str = "", test_fraction: float = 0.1, likelihood: str = "bernoulli",
                 colour: str = "colour") -> Dataset:
    """Your own arrays (``--dataset tensors:FILE``, FILE .npy, .npz or .pt; see the module).

    ``colour="colour"`` (default) keeps the channels of (N, 3, rows, columns) arrays;
    ``"grey"`` converts them. ``data_dir`` is unused: the file is given by its path.
    """
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    file = _checked_path(path, "tensors", "tensors:FILE.npy")
    x, y, already_split = _split_arrays(read_arrays(file), split, file)
    x = _as_float(x, file)
    info = {"split": split, "path": str(file.resolve())}
    if x.dim() == 2:
        data = vectors_to_dataset("tensors", x, y, likelihood=likelihood, binarize="none",
                                  info=info)
    else:
        data = images_to_dataset("tensors", x, y, colour=colour, likelihood=likelihood,
                                 info=info)
    if not already_split:
        data = _held_out(data, split, test_fraction)
    return _binarized(data, binarize, seed)


def _binarized(data: Dataset, binarize: str, seed: int) -> Dataset:
    """``data`` under ``binarize``, after the split, so that the static draw is of this split."""
    if binarize == "none":
        return data
    return vectors_to_dataset(data.name, data.x, data.y, image_shape=data.image_shape,
                              likelihood=data.likelihood, binarize=binarize, seed=seed,
                              info=data.info)


# --------------------------------------------------------------------------- image folders


def _image_files(folder: Path) -> list[Path]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def _labelled_files(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The image files of ``folder``: directly in it (no labels) or one sub-folder per label."""
    if not folder.is_dir():
        raise PyroDGMError(f"the image folder {folder} does not exist.")
    files = _image_files(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if files and classes:
        raise PyroDGMError(f"{folder} holds both images and sub-folders; put every image in a "
                           f"sub-folder per label, or all images directly in {folder}.")
    if files:
        return files, None, None
    labelled = [(path, label) for label, name in enumerate(classes)
                for path in _image_files(folder / name)]
    if not labelled:
        raise PyroDGMError(f"no image files (.png, .jpg, ...) were found in {folder} or its "
                           f"sub-folders.")
    return [path for path, _ in labelled], [label for _, label in labelled], classes


def _checked_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, size
    if (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        return tuple(size)
    raise PyroDGMError(f"size must be a positive whole number or [rows, columns], got {size!r}.")


def read_image(path: Path, size: tuple[int, int] | None, colour: str) -> np.ndarray:
    """One image file as a uint8 array (rows, columns) in grey or (3, rows, columns) in colour."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if colour == "grey" else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise PyroDGMError(f"could not read the image {path} ({type(error).__name__}); it is "
                           f"corrupt or not an image, remove it or replace it.") from None
    return pixels if colour == "grey" else pixels.transpose(2, 0, 1)


def read_images(files: list[Path], size, colour: str) -> torch.Tensor:
    """The images of ``files`` as one uint8 tensor; one sentence when their sizes differ."""
    images = [read_image(path, size, colour) for path in files]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise PyroDGMError(
            f"the images have different sizes ({', '.join(str(s[-2:]) for s in sorted(shapes)[:3])}"
            f"...); give one with --set size=28 (or size=[rows,columns]).")
    return torch.from_numpy(np.stack(images))


def load_folder(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                path: str = "", size=None, colour: str = "grey", test_fraction: float = 0.1,
                likelihood: str = "bernoulli") -> Dataset:
    """Images in a folder (``--dataset folder:PATH``; see the module for the layouts).

    Pixels are grey levels (or channel levels) scaled to [0, 1]. ``data_dir`` is unused.
    """
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    check_choice(colour, ("grey", "colour"), "colour")
    folder = _checked_path(path, "folder", "folder:PATH")
    already_split = (folder / "train").is_dir() and (folder / "test").is_dir()
    files, labels, classes = _labelled_files(folder / split if already_split else folder)
    images = read_images(files, _checked_size(size), colour).float() / 255.0
    info = {"split": split, "path": str(folder.resolve()), "n_files": len(files)}
    if classes is not None:
        info["classes"] = classes
    labels = None if labels is None else torch.tensor(labels)
    data = images_to_dataset("folder", images, labels, colour=colour, likelihood=likelihood,
                             info=info)
    if not already_split:
        data = _held_out(data, split, test_fraction)
    return _binarized(data, binarize, seed)
