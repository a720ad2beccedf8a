"""pyro_dgm: a model zoo of deep generative models written as Pyro programs.

The parts: ``pyro_dgm.models`` (generative programs), ``pyro_dgm.guides`` (inference
programs), ``pyro_dgm.distributions`` (Kumaraswamy, stick breaking), ``pyro_dgm.data``,
``pyro_dgm.infer`` (objectives, :class:`Trainer`, :func:`evaluate`), ``pyro_dgm.plots``, the
registry ``pyro_dgm.zoo``, and the experiment layer (:class:`Experiment`, :func:`load_run`).
"""

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer, evaluate
from pyro_dgm.data import Dataset, load_dataset
from pyro_dgm.experiment import Experiment, load_run, make_config

__version__ = "0.1.0"

__all__ = ["Dataset", "Experiment", "PyroDGMError", "Trainer", "evaluate", "load_dataset",
           "load_run", "make_config", "__version__"]
