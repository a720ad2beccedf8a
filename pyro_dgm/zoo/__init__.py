"""The zoo: a registry from a model's name to its model, guide, objectives, defaults and hooks.

:mod:`pyro_dgm.zoo.core` defines the entry type, the registry and the default hooks; every
other module of this package is one model family, holding its builders, its published
defaults, its own metrics and figure hooks, and the :func:`register` calls of its entries.
Importing the package imports every family module it finds, so adding a family is adding one
module here (plus its programs in ``models/`` and ``guides/``).
"""

import importlib
import pkgutil

from pyro_dgm.zoo.core import ZOO, ZooEntry, get_entry, register

for _family in pkgutil.iter_modules(__path__):
    if _family.name != "core":
        importlib.import_module(f"{__name__}.{_family.name}")

__all__ = ["ZOO", "ZooEntry", "get_entry", "register"]
