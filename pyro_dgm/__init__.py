"""pyro_dgm: a model zoo of deep generative models written as Pyro programs.

The parts: ``pyro_dgm.models`` (generative programs), ``pyro_dgm.guides`` (inference
programs), ``pyro_dgm.distributions`` (Kumaraswamy, stick breaking), ``pyro_dgm.data``,
``pyro_dgm.infer`` (objectives, :class:`Trainer`, :func:`evaluate`), ``pyro_dgm.plots`` and the
registry ``pyro_dgm.zoo``.
"""

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer, evaluate
from pyro_dgm.data import load_dataset

__version__ = "0.1.0"

__all__ = ["PyroDGMError", "Trainer", "evaluate", "load_dataset", "__version__"]
