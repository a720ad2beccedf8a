"""Multi-MNIST canvases: 0 to ``max_digits`` MNIST digits at random positions and scales.

Seed ``004`` ("from one digit to many digits", "inference: counting and locating"), after the
data of Eslami et al. (2016, Attend, Infer, Repeat): a 50x50 black canvas receives a number of
digits drawn uniformly from ``{0, ..., max_digits}``; each digit (its whole 28x28 MNIST frame)
is resized to a side drawn uniformly from ``[min_size, max_size]`` pixels and pasted at a
uniformly random position where it fits entirely.

``overlap`` says what happens where digits meet:

* ``"reject"`` (default; the data behind AIR's published counts, as Pyro's AIR example generates
  it): a canvas whose digits' strokes overlap (the pasted intensities sum above 1 at some pixel)
  is drawn again, digits, sizes and positions, until none do. Frames may still overlap where
  their strokes do not.
* ``"max"``: digits may overlap anywhere and combine by the pixel-wise maximum. Heavily
  overlapping pairs are then often indistinguishable from one odd digit, which caps the count
  accuracy of AIR-style models (README, "AIR: counting digits").

* Digits come from the offline MNIST protocol (``load_dataset("mnist", split,
  protocol="offline")``): training canvases use the 8,000 training digits and held-out
  canvases the 2,000 held-out digits, so no held-out digit is ever seen in training.
* Everything is drawn from ``torch.Generator().manual_seed(2 * seed + split_index)``: the same
  ``seed`` and options give the same canvases on every machine.
* ``y`` holds the true count; ``info["boxes"]`` (float32, shape ``(N, max_digits, 4)``) holds
  each digit's frame as ``(left, top, width, height)`` in pixels, rows ``k >= y[n]`` being 0;
  ``info["digits"]`` the MNIST labels (-1 where absent) and ``info["digit_indices"]`` the
  positions of the digits in the MNIST split they come from (-1 where absent).

Likelihood ``"gaussian"``: AIR scores the canvas with a fixed-scale Normal around the sum of
the written glimpses (Eslami et al. 2016; Pyro's AIR example, scale 0.3). The model's canvas
is a sum that may exceed 1 where glimpses overlap, so a Bernoulli cross-entropy (not a
normalized density for grey levels anyway) does not fit it; a Normal does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize
from pyro_dgm.data.mnist import load_mnist
from pyro_dgm.errors import PyroDGMError

MNIST_SIDE = 28
OVERLAP_RULES = ("reject", "max")
MAX_REDRAWS = 1_000


def load_multi_mnist(
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    n_train: int = 10_000,
    n_test: int = 1_000,
    max_digits: int = 2,
    canvas: int = 50,
    min_size: int = 20,
    max_size: int = 28,
    overlap: str = "reject",
) -> Dataset:
    """Return ``n_train`` (or ``n_test``) canvases of ``canvas`` x ``canvas`` pixels (module docstring)."""
    if check_binarize(binarize, default="none") != "none":
        raise PyroDGMError("multi-mnist canvases are grey levels scored by a Gaussian; "
                           "binarize must be 'none'.")
    _check_options(n_train, n_test, max_digits, canvas, min_size, max_size, overlap)
    digits = load_mnist(split, data_dir, protocol="offline")
    n = n_train if split == "train" else n_test
    generator = torch.Generator().manual_seed(2 * int(seed) + SPLITS.index(split))
    images, counts, boxes, labels, indices = draw_canvases(
        digits.x.view(-1, MNIST_SIDE, MNIST_SIDE), digits.y, n, max_digits, canvas,
        min_size, max_size, generator, overlap)
    return Dataset(
        name="multi-mnist",
        x=images.reshape(n, canvas * canvas),
        y=counts,
        image_shape=(canvas, canvas),
        likelihood="gaussian",
        info={"split": split, "protocol": "offline", "max_digits": max_digits,
              "canvas": canvas, "min_size": min_size, "max_size": max_size, "overlap": overlap,
              "boxes": boxes, "digits": labels, "digit_indices": indices},
    )


def _check_options(n_train, n_test, max_digits, canvas, min_size, max_size, overlap) -> None:
    for name, value in (("n_train", n_train), ("n_test", n_test), ("canvas", canvas),
                        ("min_size", min_size), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PyroDGMError(f"multi-mnist option {name} must be a positive whole number, "
                               f"got {value!r}.")
    if isinstance(max_digits, bool) or not isinstance(max_digits, int) or not 1 <= max_digits <= 9:
        raise PyroDGMError(f"multi-mnist option max_digits must be a whole number from 1 to 9, "
                           f"got {max_digits!r}.")
    if not min_size <= max_size <= canvas:
        raise PyroDGMError(f"multi-mnist needs min_size <= max_size <= canvas, got "
                           f"{min_size}, {max_size}, {canvas}.")
    if overlap not in OVERLAP_RULES:
        raise PyroDGMError(f"multi-mnist option overlap must be one of {', '.join(OVERLAP_RULES)}, "
                           f"got {overlap!r}.")


def draw_canvases(digits: torch.Tensor, digit_labels: torch.Tensor, n: int, max_digits: int,
                  canvas: int, min_size: int, max_size: int, generator: torch.Generator,
                  overlap: str):
    """Draw ``n`` canvases; returns (images (n, canvas, canvas), counts, boxes, labels, indices)."""
    images = torch.zeros(n, canvas, canvas)
    ink = torch.zeros(n, canvas, canvas)  # the digits' summed intensities, to find overlapping strokes
    counts = torch.randint(0, max_digits + 1, (n,), generator=generator)
    boxes = torch.zeros(n, max_digits, 4)
    labels = torch.full((n, max_digits), -1, dtype=torch.long)
    indices = torch.full((n, max_digits), -1, dtype=torch.long)

    def paste(i, slot, chosen, side, corner):
        left, top = (corner * (canvas - side + 1)).floor().long().tolist()
        digit = render_digit(digits[chosen], side)
        torch.maximum(images[i, top:top + side, left:left + side], digit,
                      out=images[i, top:top + side, left:left + side])
        ink[i, top:top + side, left:left + side] += digit
        boxes[i, slot] = torch.tensor([left, top, side, side], dtype=torch.float32)
        labels[i, slot], indices[i, slot] = digit_labels[chosen], chosen

    for slot in range(max_digits):
        present = (counts > slot).nonzero().squeeze(-1)
        chosen = torch.randint(0, digits.shape[0], (n,), generator=generator)
        sizes = torch.randint(min_size, max_size + 1, (n,), generator=generator)
        corner = torch.rand(n, 2, generator=generator)
        for i in present.tolist():
            paste(i, slot, int(chosen[i]), int(sizes[i]), corner[i])
    if overlap == "reject":
        for i in strokes_overlap(ink).nonzero().squeeze(-1).tolist():
            count = int(counts[i])
            for _ in range(MAX_REDRAWS):
                images[i], ink[i] = 0.0, 0.0
                chosen = torch.randint(0, digits.shape[0], (count,), generator=generator)
                sizes = torch.randint(min_size, max_size + 1, (count,), generator=generator)
                corner = torch.rand(count, 2, generator=generator)
                for slot in range(count):
                    paste(i, slot, int(chosen[slot]), int(sizes[slot]), corner[slot])
                if not strokes_overlap(ink[i]):
                    break
            else:
                raise PyroDGMError(f"multi-mnist could not place {count} digits without "
                                   f"overlapping strokes in {MAX_REDRAWS} tries; use a larger canvas, "
                                   "smaller digits or overlap='max'.")
    return images, counts, boxes, labels, indices


def render_digit(digit: torch.Tensor, side: int) -> torch.Tensor:
    """One 28x28 MNIST digit resized to ``side`` x ``side`` pixels (antialiased), in [0, 1]."""
    resized = F.interpolate(digit[None, None], size=(side, side), mode="bilinear",
                            align_corners=False, antialias=True)
    return resized[0, 0].clamp(0, 1)


def strokes_overlap(ink: torch.Tensor) -> torch.Tensor:
    """Whether the summed intensities of the pasted digits exceed 1 somewhere (Pyro's AIR data
    check), per canvas of ``ink`` (..., canvas, canvas)."""
    return (ink > 1.0).flatten(-2).any(-1)
