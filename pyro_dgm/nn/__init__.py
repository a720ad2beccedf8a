"""Network blocks shared by models and guides."""

from pyro_dgm.nn.blocks import MLP, BernoulliDecoder, GaussianDecoder, make_decoder
from pyro_dgm.nn.spatial import read_glimpse, write_glimpse

__all__ = ["MLP", "BernoulliDecoder", "GaussianDecoder", "make_decoder", "read_glimpse", "write_glimpse"]
