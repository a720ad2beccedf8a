"""VAEs with mixture priors (Nalisnick et al. 2016), seed ``000`` ("MODEL #2: Dirichlet Process
Variational Autoencoder"): ``dlgmm`` (learned Gaussian mixture) and ``dldpm`` (truncated
stick-breaking mixture), whose run folders also get samples per mixture component."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pyro_dgm import plots
from pyro_dgm.guides.dpvae import MixtureEncoder
from pyro_dgm.infer import encode_all
from pyro_dgm.models.dpvae import DPVAE
from pyro_dgm.zoo.core import ZooEntry, image_figures, register


def build_dpvae(prior: str) -> Callable:
    """The builder of the mixture-prior VAE with ``prior`` ``"gmm"`` or ``"dp"``."""
    def build(hyper: dict, data) -> tuple:
        model = DPVAE(data.dim, hyper["z_dim"], hyper["components"], prior,
                      hyper.get("alpha0", 1.0), hyper["hidden"], data.likelihood,
                      hyper["marginalize"])
        guide = MixtureEncoder(data.dim, hyper["z_dim"], hyper["components"], prior,
                               hyper["hidden"], hyper["marginalize"])
        return model, guide
    return build


def _dpvae_figures(model, guide, train, test, history, out) -> None:
    """The standard figures, plus one grid of samples per mixture component (the seed's
    "MNIST Samples from Component #k"), for the components that explain most test codes."""
    image_figures(model, guide, train, test, history, Path(out))
    codes = encode_all(guide.encode, test.x[:1000].to(next(model.parameters()).device))
    usage = model.responsibilities(codes).mean(0)
    for rank, component in enumerate(usage.argsort(descending=True)[:10].tolist()):
        plots.image_grid(model.sample_component(component, 25), train.image_shape,
                         Path(out) / f"samples_component_{rank + 1:02d}.png", nrow=5,
                         title=f"component {component} ({100 * usage[component]:.1f} % of codes)")


# Only ``enum-elbo`` applies: with the default ``marginalize="sum"`` the guide's component ``c``
# is a discrete site summed out by enumeration, which ``iwae`` cannot reparameterize and which
# ``elbo`` (Trace_ELBO) would sample with a score-function gradient; with
# ``marginalize="enumerate"`` the programs have no discrete site and ``enum-elbo`` is the ELBO.
for _prior, _name, _description, _defaults in (
        ("gmm", "dlgmm", "deep latent Gaussian mixture: VAE with a learned Gaussian-mixture prior",
         {"z_dim": 25, "components": 3, "hidden": 500, "marginalize": "sum"}),
        ("dp", "dldpm", "deep latent DP mixture: VAE with a truncated stick-breaking mixture prior",
         {"z_dim": 25, "components": 17, "alpha0": 1.0, "hidden": 500, "marginalize": "sum"})):
    register(ZooEntry(
        name=_name, description=f"{_description} (Nalisnick et al. 2016)",
        model="pyro_dgm.models.dpvae.DPVAE", guide="pyro_dgm.guides.dpvae.MixtureEncoder",
        build=build_dpvae(_prior),
        objective="enum-elbo", objectives=("enum-elbo",),
        defaults=_defaults,
        training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
        datasets=("bars", "mnist", "freyfaces"),
        source="seed 000, 'MODEL #2: Dirichlet Process Variational Autoencoder'",
        figures=_dpvae_figures,
    ))
