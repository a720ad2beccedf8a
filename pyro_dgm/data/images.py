"""Images of any source as a ``Dataset``: grey or colour, and the likelihood that scores them.

The zoo's decoders score flat vectors, with a Bernoulli cross-entropy on values in [0, 1]
(``likelihood="bernoulli"``) or a Gaussian (``likelihood="gaussian"``). Images become such
vectors here, by one rule:

* ``colour="grey"``: colour images are converted to grey levels
  (``torchvision.transforms.functional.rgb_to_grayscale``, ITU-R 601 weights), then each
  image is flattened row by row: D = rows x columns.
* ``colour="colour"``: the channels are kept and flattened channel by channel (red plane,
  green plane, blue plane): D = 3 x rows x columns, each value a grey level of one channel,
  scored by the same likelihood as a grey pixel. ``image_shape`` is then
  (3 x rows, columns), so the plots draw the three planes one above the other.

A discretized logistic likelihood is not among the zoo's decoders and is refused.
"""

from __future__ import annotations

import dataclasses

import torch

from pyro_dgm.data.core import LIKELIHOODS, Dataset, binarize_once, check_choice
from pyro_dgm.errors import PyroDGMError

COLOURS = ("grey", "colour")


def check_likelihood(likelihood: str) -> str:
    """Return ``likelihood`` if the zoo's decoders have it; else one sentence."""
    if likelihood not in LIKELIHOODS:
        raise PyroDGMError(
            f"likelihood {likelihood!r} is not one the zoo's decoders have; expected "
            f"'bernoulli' (grey levels in [0, 1]) or 'gaussian' (continuous values).")
    return likelihood


def as_channels(images: torch.Tensor, colour: str) -> torch.Tensor:
    """Images (N, H, W) or (N, C, H, W) with C = 1 or 3 as (N, C, H, W), with C = 1 under
    ``colour="grey"`` (colour converted to grey levels)."""
    check_choice(colour, COLOURS, "colour")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise PyroDGMError(
            f"images must have shape (N, rows, columns) or (N, channels, rows, columns) with 1 "
            f"or 3 channels, got {tuple(images.shape)} (move the channels of an array "
            f"(N, rows, columns, channels) first with x.transpose(0, 3, 1, 2)).")
    if colour == "grey" and images.shape[1] == 3:
        from torchvision.transforms.functional import rgb_to_grayscale

        images = rgb_to_grayscale(images)
    return images


def images_to_dataset(name: str, images: torch.Tensor, labels=None, *, colour: str = "grey",
                      likelihood: str = "bernoulli", binarize: str = "none", seed: int = 0,
                      info: dict | None = None) -> Dataset:
    """A ``Dataset`` of ``images`` (float, (N, H, W) or (N, C, H, W)), converted by ``colour``.

    Values are checked by :meth:`Dataset.from_tensors` (finite; in [0, 1] under a Bernoulli
    likelihood or a binarization). ``binarize="static"`` draws once from ``seed``;
    ``info`` gains ``channels`` and ``likelihood``.
    """
    images = as_channels(images.to(torch.float32), colour)
    n, channels, rows, columns = images.shape
    return vectors_to_dataset(
        name, images.reshape(n, -1), labels, image_shape=(channels * rows, columns),
        likelihood=likelihood, binarize=binarize, seed=seed,
        info={**(info or {}), "channels": channels})


def vectors_to_dataset(name: str, x: torch.Tensor, labels=None, *, image_shape=None,
                       likelihood: str = "bernoulli", binarize: str = "none", seed: int = 0,
                       info: dict | None = None) -> Dataset:
    """A ``Dataset`` of the rows of ``x`` (N, D), checked by :meth:`Dataset.from_tensors`."""
    check_likelihood(likelihood)
    # a dynamic binarization runs the checks a static one needs; the static draw follows, from seed
    checked_as = "dynamic" if binarize == "static" else binarize
    data = Dataset.from_tensors(x, labels, likelihood=likelihood, image_shape=image_shape,
                                name=name, binarize=checked_as,
                                info={**(info or {}), "likelihood": likelihood})
    if binarize == "static":
        data = dataclasses.replace(data, x=binarize_once(data.x, "static", seed), binarize="static")
    return data
