"""One registry mechanism for everything that is looked up by name: models, objectives, data sets.

A :class:`Registry` maps names to entries, in the order they were registered. Looking up a
name that is not there raises :class:`~pyro_dgm.errors.PyroDGMError` with one sentence that
lists the valid names, so the command line can print it as it is::

    MODELS = Registry("model")
    MODELS.register("vae", entry)
    MODELS["vae"]          # the entry
    MODELS["vea"]          # PyroDGMError: unknown model 'vea'; valid models are: sbvae, vae

This module imports nothing of the project but its error type, so every layer can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

from pyro_dgm.errors import PyroDGMError

T = TypeVar("T")


class Registry(MutableMapping, Generic[T]):
    """Named entries of one ``kind`` (``"model"``, ``"objective"``, ``"data set"``)."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind, self.plural = kind, plural or f"{kind}s"
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name``; registering a name twice is a programming error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise PyroDGMError(f"unknown {self.kind} {name!r}; valid {self.plural} are: "
                               f"{', '.join(sorted(self._entries))}") from None

    def __setitem__(self, name: str, entry: T) -> None:  # replace an entry (tests patch them)
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def get(self, name: str, default=None):
        return self._entries.get(name, default)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


def check_settings(owner: str, kind: str, defaults: dict, overrides: dict,
                   positive: bool = True) -> dict:
    """``defaults`` updated with ``overrides``, each override checked against its default.

    An unknown key lists the valid ones; a value must have its default's type (any finite
    number where the default is a float; ``None`` or a positive whole number where the default
    is ``None``), and numbers must be positive (whole numbers at least
    1; floats too, unless ``positive=False``). ``owner`` and ``kind`` name them in the sentence,
    e.g. ``"model 'vae'"`` and ``"hyper-parameter"``.
    """
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise PyroDGMError(f"{owner} has no {kind}(s) {unknown}; valid ones are "
                           f"{sorted(defaults) or 'none'}")
    for key, value in overrides.items():
        default = defaults[key]
        if default is None:  # "off / automatic" by default: None, or a positive whole number
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise PyroDGMError(f"{kind} {key!r} of {owner} takes null or a positive whole "
                                   f"number, got {value!r}")
            continue
        expected = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
            raise PyroDGMError(f"{kind} {key!r} of {owner} takes a {type(default).__name__}, "
                               f"got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low_ok = value > 0 if (positive or isinstance(default, int)) else True
            if not (math.isfinite(value) and low_ok):
                rule = "positive and finite" if positive or isinstance(default, int) else "finite"
                raise PyroDGMError(f"{kind} {key!r} of {owner} must be {rule}, got {value!r}")
    return {**defaults, **overrides}
