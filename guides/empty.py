r"""The empty guide of a model with no latent sites (NADE, a normalizing-flow density).

With no latent variable the ELBO is the log-likelihood itself,

.. math::

    \mathcal L(\theta; x) = \mathbb E_{q}[\log p_\theta(x, z) - \log q(z \mid x)]
    = \log p_\theta(x),

so training the model with this guide under the ``elbo`` objective is maximum likelihood
(seed ``004``, "Normalizing flows": "trained directly by maximum likelihood (no ELBO
required)"), and every importance-weighted bound equals :math:`\log p_\theta(x)` for any k.
"""

from __future__ import annotations

from pyro.nn import PyroModule


class EmptyGuide(PyroModule):
    """A guide that samples nothing: the programs' sites are all observed."""

    def __init__(self):
        super().__init__(name="empty_guide")

    def forward(self, *args, **kwargs) -> None:
        return None
