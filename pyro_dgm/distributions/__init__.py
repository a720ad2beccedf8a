"""Distributions and transforms that Pyro does not ship and the model zoo needs."""

from .kumaraswamy import Kumaraswamy, kl_kumaraswamy_beta
from .stick_breaking import StickBreakingFractions, TruncatedGEM, log_stick_weights
from .flows import FLOWS, ConditionalSylvester, conditional_flow

__all__ = [
    "Kumaraswamy",
    "StickBreakingFractions",
    "TruncatedGEM",
    "kl_kumaraswamy_beta",
    "log_stick_weights",
    "FLOWS",
    "ConditionalSylvester",
    "conditional_flow",
]
