r"""Amortized (conditional) normalizing flows for variational posteriors.

Seed ``001`` ("Normalizing flows", "Householder Flow", "Sylvester Normalizing Flows"): a sample
of a diagonal Gaussian :math:`z^{(0)} \sim q(z^{(0)} \mid x)` is pushed through :math:`T`
invertible maps :math:`z^{(t)} = f^{(t)}(z^{(t-1)})` whose parameters are computed from the
data point by the encoder (amortization), and

.. math::

    \log q(z^{(T)} \mid x) = \log q(z^{(0)} \mid x)
        - \sum_{t=1}^{T} \log \Big|\det \frac{\partial f^{(t)}}{\partial z^{(t-1)}}\Big|.

Every flow here is a Pyro ``ConditionalTransformModule``: ``flow.condition(h)`` with the
encoder's context ``h(x)`` (shape ``(N, C)``) returns a ``Transform`` whose parameters have
batch shape ``(N,)``; it broadcasts over leading particle dimensions ``(k, N, D)``.

Which is whose:

- **Pyro's** ``ConditionalPlanar`` (Rezende & Mohamed 2015), ``ConditionalHouseholder``
  (Tomczak & Welling 2016; volume preserving, exact inverse) and
  ``ConditionalAffineAutoregressive`` with a ``ConditionalAutoRegressiveNN`` (IAF, Kingma et
  al. 2016, the gated "stable" update of their eq. 10) are used as they are; this module only
  supplies :class:`ContextHead`, the linear map from the context to their parameters.
- **Ours**: :class:`ConditionalSylvester` (van den Berg et al. 2018), which Pyro lacks (its
  ``Sylvester`` is not conditional and only has the Householder variant), with the three
  choices of :math:`Q` of the seed's table: orthogonal by iterative (Björck) orthogonalization
  (O-SNF), a product of Householder reflections (H-SNF), and alternating identity / reversal
  permutations (T-SNF).

Planar and Sylvester maps are invertible (their parameters are constrained so) but have no
closed-form inverse: a ``TransformedDistribution`` built on them can score the samples it has
just drawn (the transforms cache ``x -> y`` and the log-determinant, ``cache_size=1``) but not
arbitrary values.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import constraints

from pyro.distributions.conditional import ConditionalTransformModule
from pyro.distributions.transforms import (ConditionalAffineAutoregressive,
                                           ConditionalHouseholder, ConditionalPlanar)
from pyro.nn import ConditionalAutoRegressiveNN

from pyro_dgm.errors import PyroDGMError

FLOWS = ("planar", "iaf", "householder", "sylvester-o", "sylvester-h", "sylvester-t")


class ContextHead(nn.Module):
    """A linear map from the context ``h`` (``..., C``) to parameter tensors of given shapes.

    ``ContextHead(C, [(1,), (D,), (D,)])(h)`` returns ``(bias, u, w)`` with shapes
    ``(..., 1)``, ``(..., D)``, ``(..., D)``: the hypernetwork of Pyro's conditional
    transforms. With a single shape it returns one tensor. ``init_scale`` shrinks the initial
    weights so that a flow starts close to the identity.
    """

    def __init__(self, context_dim: int, shapes: list[tuple[int, ...]], init_scale: float = 0.1):
        super().__init__()
        self.shapes = [tuple(shape) for shape in shapes]
        self.linear = nn.Linear(context_dim, sum(math.prod(s) for s in self.shapes))
        with torch.no_grad():
            self.linear.weight.mul_(init_scale)
            self.linear.bias.mul_(init_scale)

    def forward(self, context: torch.Tensor):
        flat = self.linear(context).split([math.prod(s) for s in self.shapes], dim=-1)
        params = tuple(p.reshape(*context.shape[:-1], *s) for p, s in zip(flat, self.shapes))
        return params[0] if len(params) == 1 else params


# ---------------------------------------------------------------------------- Sylvester


def bjorck_orthogonalize(a: torch.Tensor, tol: float = 1e-6, max_steps: int = 100) -> torch.Tensor:
    r"""An orthonormal-column matrix near ``a`` (``..., D, M``, ``M <= D``), as in O-SNF.

    van den Berg et al. (2018), eq. (14): :math:`Q^{(0)} = A / \|A\|_F`, then
    :math:`Q^{(k+1)} = Q^{(k)} (I + \tfrac12 (I - Q^{(k)\top} Q^{(k)}))` until
    :math:`\max |Q^\top Q - I| < \mathrm{tol}` (differentiable: the steps stay in the graph).
    """
    q = a / a.flatten(-2).norm(dim=-1).clamp_min(1e-12)[..., None, None]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    for _ in range(max_steps):
        defect = eye - q.transpose(-1, -2) @ q
        if defect.detach().abs().max() < tol:
            break
        q = q @ (eye + 0.5 * defect)
    return q


def householder_product(v: torch.Tensor) -> torch.Tensor:
    r"""``Q = H_1 H_2 ... H_L`` with :math:`H_j = I - 2 v_j v_j^\top / \|v_j\|^2`; ``v``: ``(..., L, D)``."""
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    q = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device).expand(*v.shape[:-2], -1, -1)
    for j in range(v.shape[-2]):
        vj = v[..., j, :]
        q = q - 2.0 * (q @ vj.unsqueeze(-1)) * vj.unsqueeze(-2)
    return q


class ConditionedSylvester(torch.distributions.Transform):
    r"""One Sylvester step with fixed (already conditioned) parameters.

    .. math::

        z' = z + Q R_1 \tanh(R_2 Q^\top z + b), \qquad
        \log|\det J| = \sum_{i=1}^M \log\big|1 + \tanh'(r_i)\, R_{1,ii} R_{2,ii}\big|,

    (Sylvester's determinant identity, seed ``001``) with :math:`r = R_2 Q^\top z + b`,
    :math:`Q` (``N, D, M``) orthonormal columns, :math:`R_1, R_2` (``N, M, M``) upper
    triangular with diagonals in (-1, 1), so that :math:`1 + \tanh' R_{1,ii} R_{2,ii} > 0`
    and the map is invertible. No closed-form inverse: only cached samples can be scored.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, q: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, b: torch.Tensor):
        super().__init__(cache_size=1)
        self.q, self.r1, self.r2, self.b = q, r1, r2, b
        self._cached_log_det = None

    def _call(self, z: torch.Tensor) -> torch.Tensor:
        qz = (z.unsqueeze(-2) @ self.q).squeeze(-2)                       # Q^T z, (..., M)
        r = (self.r2 @ qz.unsqueeze(-1)).squeeze(-1) + self.b            # R2 Q^T z + b
        h = torch.tanh(r)
        y = z + (self.q @ (self.r1 @ h.unsqueeze(-1))).squeeze(-1)
        diag = torch.diagonal(self.r1, dim1=-2, dim2=-1) * torch.diagonal(self.r2, dim1=-2, dim2=-1)
        self._cached_log_det = torch.log1p((1.0 - h.pow(2)) * diag).sum(-1)
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "a Sylvester flow has no closed-form inverse: it can only score the samples it has "
            "just drawn (cached), not arbitrary values")

    def log_abs_det_jacobian(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z_old, y_old = self._cached_x_y
        if z is not z_old or y is not y_old:
            self._call(z)
        return self._cached_log_det


class ConditionalSylvester(ConditionalTransformModule):
    r"""Amortized Sylvester flow step (van den Berg et al. 2018); ``variant`` picks :math:`Q`.

    - ``"orthogonal"`` (O-SNF): a ``D x M`` matrix from the context, orthogonalized by
      :func:`bjorck_orthogonalize` (the paper's iterative procedure, not Cayley or QR);
    - ``"householder"`` (H-SNF): :math:`Q = H_1 \cdots H_L` from ``reflections`` context vectors;
    - ``"triangular"`` (T-SNF): :math:`Q` is the identity (``reverse=False``) or the
      reversal permutation (``reverse=True``); consecutive steps alternate.

    :math:`R_1, R_2` (upper triangular, diagonals ``tanh`` of context outputs) and ``b`` also
    come from the context.
    """

    bijective = True
    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, input_dim: int, context_dim: int, variant: str = "orthogonal",
                 num_ortho: int | None = None, reflections: int = 4, reverse: bool = False):
        super().__init__()
        if variant not in ("orthogonal", "householder", "triangular"):
            raise PyroDGMError(f"unknown Sylvester variant {variant!r}; expected orthogonal, "
                               f"householder or triangular")
        self.variant, self.reverse = variant, reverse
        d = input_dim
        m = (num_ortho or d) if variant == "orthogonal" else d
        if not 1 <= m <= d:
            raise PyroDGMError(f"O-SNF needs 1 <= num_ortho <= {d}, got {m}")
        self.input_dim, self.m = d, m
        shapes = [(m, m), (m, m), (m,), (m,), (m,)]        # R1, R2 (full), diag1, diag2, b
        if variant == "orthogonal":
            shapes.append((d, m))
        elif variant == "householder":
            shapes.append((reflections, d))
        self.head = ContextHead(context_dim, shapes)
        if variant == "orthogonal":  # start the orthogonalization from a well-conditioned matrix
            with torch.no_grad():
                eye = torch.eye(d, m).flatten()
                self.head.linear.bias[-d * m:] = eye + 0.1 * self.head.linear.bias[-d * m:]
        self.register_buffer("_triu_mask", torch.ones(m, m).triu(1))
        permutation = torch.arange(d - 1, -1, -1) if reverse else torch.arange(d)
        self.register_buffer("_permutation", torch.eye(d)[:, permutation])

    def q_matrix(self, params) -> torch.Tensor:
        """``Q`` (``..., D, M``) for the head's outputs ``params``."""
        if self.variant == "orthogonal":
            return bjorck_orthogonalize(params[5])
        if self.variant == "householder":
            return householder_product(params[5])
        return self._permutation

    def condition(self, context: torch.Tensor) -> ConditionedSylvester:
        params = self.head(context)
        full1, full2, diag1, diag2, b = params[:5]
        r1 = full1 * self._triu_mask + torch.diag_embed(torch.tanh(diag1))
        r2 = full2 * self._triu_mask + torch.diag_embed(torch.tanh(diag2))
        return ConditionedSylvester(self.q_matrix(params), r1, r2, b)


# ---------------------------------------------------------------------------- builders


def conditional_flow(name: str, input_dim: int, context_dim: int, length: int,
                     iaf_hidden: int | None = None, reflections: int = 4,
                     num_ortho: int | None = None) -> list[ConditionalTransformModule]:
    """The ``length`` conditional steps of flow ``name`` (one of :data:`FLOWS`).

    ``householder`` is one Pyro ``ConditionalHouseholder`` with ``length`` reflections (volume
    preserving); the others are ``length`` steps of their kind. ``iaf_hidden`` (default
    ``max(2 * input_dim, 32)``) is the width of IAF's autoregressive network.
    """
    if name not in FLOWS:
        raise PyroDGMError(f"unknown flow {name!r}; valid flows are {', '.join(FLOWS)}")
    if not (isinstance(length, int) and length >= 1):
        raise PyroDGMError(f"the flow length must be a positive whole number, got {length!r}")
    d = input_dim
    if name == "householder":
        return [ConditionalHouseholder(d, ContextHead(context_dim, [(d,)] * length),
                                       count_transforms=length)]
    steps: list[ConditionalTransformModule] = []
    for t in range(length):
        if name == "planar":
            steps.append(ConditionalPlanar(ContextHead(context_dim, [(1,), (d,), (d,)])))
        elif name == "iaf":
            hidden = iaf_hidden or max(2 * d, 32)
            # alternate the autoregressive order between steps, as in Kingma et al. (2016)
            order = torch.arange(d) if t % 2 == 0 else torch.arange(d - 1, -1, -1)
            arn = ConditionalAutoRegressiveNN(d, context_dim, [hidden], permutation=order)
            steps.append(ConditionalAffineAutoregressive(arn, stable=True))
        else:
            variant = {"sylvester-o": "orthogonal", "sylvester-h": "householder",
                       "sylvester-t": "triangular"}[name]
            steps.append(ConditionalSylvester(d, context_dim, variant, num_ortho=num_ortho,
                                              reflections=reflections, reverse=t % 2 == 1))
    return steps


def volume_preserving(name: str) -> bool:
    """Whether flow ``name`` has ``log|det J| = 0`` exactly."""
    return name == "householder"


def has_inverse(name: str) -> bool:
    """Whether flow ``name`` can invert arbitrary values (not only cached samples)."""
    return name in ("householder", "iaf")


__all__ = ["FLOWS", "ContextHead", "ConditionalSylvester", "ConditionedSylvester",
           "bjorck_orthogonalize", "householder_product", "conditional_flow",
           "volume_preserving", "has_inverse"]
