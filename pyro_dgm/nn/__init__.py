"""Network blocks shared by models and guides."""

from pyro_dgm.nn.blocks import MLP, BernoulliDecoder, GaussianDecoder, make_decoder

__all__ = ["MLP", "BernoulliDecoder", "GaussianDecoder", "make_decoder"]
