"""The zoo: a registry from a model's name to its model, guide, objectives and defaults.

Each entry builds a ``(model, guide)`` pair for a data set from hyper-parameters; the defaults
are the published ones where the seed or paper gives them. Later models register themselves
here with :func:`register`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.registry import Registry
from pyro_dgm.guides import GaussianEncoder, KumaraswamyEncoder, SBNRecognition
from pyro_dgm.models import SBVAE, VAE, SigmoidBeliefNet


@dataclass(frozen=True)
class ZooEntry:
    """A trainable model of the zoo.

    ``build(hyper, data)`` returns ``(model, guide)`` for a :class:`pyro_dgm.data.Dataset`;
    ``hyper`` holds every key of ``defaults`` (overrides validated by :meth:`hyper`).
    ``training`` holds the default ``lr``, ``batch_size`` and ``epochs``.

    Models whose data are not images, or whose programs take more than ``x``, replace the
    CLI's image-VAE defaults with three optional hooks:

    - ``test_metrics(model, guide, test, num_samples) -> dict``: the held-out numbers written
      to ``metrics.json`` after training (default: ``{"test_elbo": ...}`` from importance
      weights);
    - ``evaluate(model, guide, test, train, *, iwae_samples, knn, seed) -> dict``: what
      ``pyro-dgm evaluate`` writes to ``eval.json`` (default :func:`pyro_dgm.infer.evaluate`);
    - ``figures(model, guide, train, test, history, out)``: the PNG figures of a run folder
      (default: samples, reconstructions, training curve, latent embedding, code usage).
    """

    name: str
    description: str
    model: str
    guide: str
    build: Callable
    objective: str
    objectives: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    datasets: tuple[str, ...] = ("bars", "mnist", "freyfaces")
    status: str = "ready"
    source: str = ""
    test_metrics: Callable | None = None
    evaluate: Callable | None = None
    figures: Callable | None = None

    def hyper(self, overrides: dict | None = None) -> dict:
        """The defaults updated with ``overrides``; an unknown key lists the valid ones."""
        overrides = overrides or {}
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise PyroDGMError(f"model {self.name!r} has no hyper-parameter(s) {sorted(unknown)}; "
                               f"valid ones are {sorted(self.defaults)}")
        for key, value in overrides.items():
            default = self.defaults[key]
            expected = (int, float) if isinstance(default, float) else type(default)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise PyroDGMError(f"hyper-parameter {key!r} of model {self.name!r} takes a "
                                   f"{type(default).__name__}, got {value!r}")
            if isinstance(value, (int, float)) and not value > 0:
                raise PyroDGMError(f"hyper-parameter {key!r} of model {self.name!r} must be "
                                   f"positive, got {value!r}")
        return {**self.defaults, **overrides}


ZOO: Registry[ZooEntry] = Registry("model")


def _lazy(module: str, name: str) -> Callable:
    """``module.name``, imported on first call: hooks of heavy modules cost nothing at start-up."""
    def hook(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    return hook


def register(entry: ZooEntry) -> ZooEntry:
    return ZOO.register(entry.name, entry)


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an unknown name lists the valid ones."""
    return ZOO[name]


def _build_vae(hyper: dict, data) -> tuple:
    model = VAE(data.dim, hyper["z_dim"], hyper["hidden"], data.likelihood)
    guide = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    return model, guide


def _build_sbvae(hyper: dict, data) -> tuple:
    model = SBVAE(data.dim, hyper["truncation"], hyper["alpha0"], hyper["hidden"], data.likelihood)
    guide = KumaraswamyEncoder(data.dim, hyper["truncation"], hyper["hidden"],
                               taylor_terms=hyper["kl_terms"])
    return model, guide


register(ZooEntry(
    name="vae",
    description="Gaussian-latent VAE (Kingma & Welling 2014)",
    model="pyro_dgm.models.VAE", guide="pyro_dgm.guides.GaussianEncoder",
    build=_build_vae,
    objective="elbo", objectives=("elbo", "meanfield", "tracegraph", "iwae", "rws"),
    defaults={"z_dim": 50, "hidden": 500},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 000, 'The Variational Autoencoder'",
))
register(ZooEntry(
    name="sbvae",
    description="stick-breaking VAE with Kumaraswamy posteriors (Nalisnick & Smyth 2017)",
    model="pyro_dgm.models.SBVAE", guide="pyro_dgm.guides.KumaraswamyEncoder",
    build=_build_sbvae,
    objective="meanfield", objectives=("meanfield", "elbo", "tracegraph", "iwae"),
    defaults={"truncation": 50, "alpha0": 5.0, "hidden": 500, "kl_terms": 10},
    training={"lr": 3e-4, "batch_size": 100, "epochs": 60},
    source="seed 000, 'MODEL #1: Stick-Breaking Variational Autoencoder'",
))


def _build_sbn(hyper: dict, data) -> tuple:
    return SigmoidBeliefNet(data.dim, hyper["layers"]), SBNRecognition(data.dim, hyper["layers"])


register(ZooEntry(
    name="sbn",
    description="sigmoid belief net / Helmholtz machine with binary latent layers (Neal 1992)",
    model="pyro_dgm.models.SigmoidBeliefNet", guide="pyro_dgm.guides.SBNRecognition",
    build=_build_sbn,
    objective="rws", objectives=("rws", "wake-sleep", "nvil", "tracegraph", "prior-is"),
    defaults={"layers": [200]},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 004, 'Wake-sleep algorithm', 'Reweighted wake-sleep' (Bornschein & Bengio 2015)",
))


# -- DP mixture of Gaussians by SVI (issue 3) ---------------------------------------------
from pyro_dgm.guides.dp_mixture import DPMixtureGuide  # noqa: E402
from pyro_dgm.models import dp_mixture  # noqa: E402


def _build_dp_mixture(hyper: dict, data) -> tuple:
    model = dp_mixture.DPMixture.from_data(data.x, hyper["truncation"], hyper["alpha0"])
    guide = DPMixtureGuide.from_data(data.x, hyper["truncation"], hyper["stick_posterior"],
                                     hyper["kl_terms"], init_alpha0=hyper["alpha0"])
    return model, guide


register(ZooEntry(
    name="dp-mixture",
    description="truncated stick-breaking DP mixture of Gaussians, minibatch SVI",
    model="pyro_dgm.models.dp_mixture.DPMixture", guide="pyro_dgm.guides.dp_mixture.DPMixtureGuide",
    build=_build_dp_mixture,
    objective="meanfield", objectives=("meanfield", "elbo"),
    defaults={"truncation": 20, "alpha0": 1.0, "stick_posterior": "kumaraswamy", "kl_terms": 10},
    training={"lr": 0.05, "batch_size": 100, "epochs": 100},
    datasets=("gaussian-clusters",),
    source="seed 000, 'The Dirichlet Process', 'SGVB for the Dirichlet Process'",
    test_metrics=dp_mixture.held_out_metrics,
    evaluate=dp_mixture.evaluate_run,
    figures=dp_mixture.run_figures,
))


# -- inference compilation: amortized IS proposals for polynomial regression (issue 7) ------
def _build_polyreg(hyper: dict, data) -> tuple:
    from pyro_dgm.guides.polyreg import PolyRegProposal
    from pyro_dgm.models.polyreg import PolyRegression

    model = PolyRegression(hyper["degree"], hyper["df"], min_points=data.info["min_points"],
                           max_points=data.max_points)
    guide = PolyRegProposal(hyper["degree"], hyper["hidden"], hyper["components"])
    return model, guide


register(ZooEntry(
    name="polyreg",
    description="non-conjugate Bayesian polynomial regression, amortized IS proposal (inference "
                "compilation)",
    model="pyro_dgm.models.polyreg.PolyRegression", guide="pyro_dgm.guides.polyreg.PolyRegProposal",
    build=_build_polyreg,
    objective="sleep", objectives=("sleep", "csis"),
    defaults={"degree": 3, "df": 4.0, "hidden": 128, "components": 3},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 50},
    datasets=("polyreg",),
    source="seed 004, 'Amortized inference without deep generative models', "
           "'Learning importance sampling proposals'",
    test_metrics=_lazy("pyro_dgm.infer.compilation", "test_metrics"),
    evaluate=_lazy("pyro_dgm.infer.compilation", "evaluate"),
    figures=_lazy("pyro_dgm.infer.compilation", "figures"),
))


# -- issue 3: the DP-VAE (DLGMM, DLDPM) and the semi-supervised M2 / SB-M2 --------------------
def _build_dpvae(prior: str) -> Callable:
    def build(hyper: dict, data) -> tuple:
        from pyro_dgm.guides.dpvae import MixtureEncoder
        from pyro_dgm.models.dpvae import DPVAE
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
    from pathlib import Path

    from pyro_dgm import cli, plots
    from pyro_dgm.infer.estimators import encode_all

    cli.figures(model, guide, train, test, history, Path(out))
    codes = encode_all(guide.encode, test.x[:1000].to(next(model.parameters()).device))
    usage = model.responsibilities(codes).mean(0)
    for rank, component in enumerate(usage.argsort(descending=True)[:10].tolist()):
        plots.image_grid(model.sample_component(component, 25), train.image_shape,
                         Path(out) / f"samples_component_{rank + 1:02d}.png", nrow=5,
                         title=f"component {component} ({100 * usage[component]:.1f} % of codes)")


def _build_m2(latent: str) -> Callable:
    def build(hyper: dict, data) -> tuple:
        from pyro_dgm.guides.ssvae import M2Guide
        from pyro_dgm.models.ssvae import M2
        if data.y is None:
            raise PyroDGMError(f"M2 needs a labelled data set, and {data.name!r} has no labels")
        n_classes = int(data.y.max()) + 1
        z_dim = hyper["z_dim"] if latent == "gaussian" else hyper["truncation"]
        model = M2(data.dim, n_classes, z_dim, latent, hyper.get("alpha0", 5.0), hyper["hidden"],
                   data.likelihood)
        guide = M2Guide(data.dim, n_classes, z_dim, latent, hyper["hidden"])
        return model, guide
    return build


for _prior, _name, _description, _defaults in (
        ("gmm", "dlgmm", "deep latent Gaussian mixture: VAE with a learned Gaussian-mixture prior",
         {"z_dim": 25, "components": 3, "hidden": 500, "marginalize": "sum"}),
        ("dp", "dldpm", "deep latent DP mixture: VAE with a truncated stick-breaking mixture prior",
         {"z_dim": 25, "components": 17, "alpha0": 1.0, "hidden": 500, "marginalize": "sum"})):
    register(ZooEntry(
        name=_name, description=f"{_description} (Nalisnick et al. 2016)",
        model="pyro_dgm.models.dpvae.DPVAE", guide="pyro_dgm.guides.dpvae.MixtureEncoder",
        build=_build_dpvae(_prior),
        objective="enum-elbo", objectives=("enum-elbo", "elbo", "iwae"),
        defaults=_defaults,
        training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
        datasets=("bars", "mnist", "freyfaces"),
        source="seed 000, 'MODEL #2: Dirichlet Process Variational Autoencoder'",
        figures=_dpvae_figures,
    ))

for _latent, _name, _description, _defaults in (
        ("gaussian", "m2", "semi-supervised M2 with a Gaussian latent (Kingma et al. 2014)",
         {"z_dim": 50, "hidden": 500}),
        ("stick-breaking", "sb-m2", "semi-supervised M2 with a stick-breaking latent (SB-DGM)",
         {"truncation": 50, "alpha0": 5.0, "hidden": 500})):
    register(ZooEntry(
        name=_name, description=_description,
        model="pyro_dgm.models.ssvae.M2", guide="pyro_dgm.guides.ssvae.M2Guide",
        build=_build_m2(_latent),
        objective="ss-elbo", objectives=("ss-elbo", "enum-elbo"),
        defaults=_defaults,
        training={"lr": 1e-3, "batch_size": 100, "epochs": 50},
        datasets=("mnist-ssl", "bars-ssl"),
        source="seed 000, 'Semi-Supervised: nonparametric version of Kingma et al.'s M2'",
        test_metrics=_lazy("pyro_dgm.infer.semi_supervised", "test_metrics"),
        evaluate=_lazy("pyro_dgm.infer.semi_supervised", "evaluate"),
        figures=_lazy("pyro_dgm.infer.semi_supervised", "figures"),
    ))


# -- issue 4: flow guides (planar, IAF, Householder, Sylvester) and the VampPrior ----------
def _build_vae_flow(hyper: dict, data) -> tuple:
    from pyro_dgm.guides.flow import FlowGuide
    model = VAE(data.dim, hyper["z_dim"], hyper["hidden"], data.likelihood)
    encoder = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    return model, FlowGuide(encoder, hyper["flow"], hyper["flow_length"])


def _pseudo_input_init(data, n_pseudo: int):
    """``n_pseudo`` training images (fixed draw) as the pseudo-inputs' starting point."""
    import torch
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(data.x.shape[0], (n_pseudo,), generator=generator)
    return data.x[index]


def _build_vamp_vae(hyper: dict, data) -> tuple:
    from pyro_dgm.models.vamp import VampVAE
    encoder = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    model = VampVAE(data.dim, encoder, hyper["z_dim"], hyper["hidden"], data.likelihood,
                    hyper["pseudo_inputs"], _pseudo_input_init(data, hyper["pseudo_inputs"]))
    return model, encoder


def _build_vamp_hvae(hyper: dict, data) -> tuple:
    from pyro_dgm.guides.hvae import HVAEGuide
    from pyro_dgm.models.vamp import VampHVAE
    guide = HVAEGuide(data.dim, hyper["z1_dim"], hyper["z2_dim"], hyper["hidden"])
    model = VampHVAE(data.dim, guide.z2_encoder, hyper["z1_dim"], hyper["z2_dim"],
                     hyper["hidden"], data.likelihood, hyper["pseudo_inputs"],
                     _pseudo_input_init(data, hyper["pseudo_inputs"]))
    return model, guide


register(ZooEntry(
    name="vae-flow",
    description="VAE with an amortized flow guide: planar, iaf, householder, sylvester-o/h/t",
    model="pyro_dgm.models.VAE", guide="pyro_dgm.guides.flow.FlowGuide",
    build=_build_vae_flow,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z_dim": 50, "hidden": 500, "flow": "sylvester-o", "flow_length": 4},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 001, 'Normalizing flows', 'Householder Flow', 'Sylvester Normalizing Flows'",
))
register(ZooEntry(
    name="vamp-vae",
    description="VAE with a VampPrior of learned pseudo-inputs (Tomczak & Welling 2018)",
    model="pyro_dgm.models.vamp.VampVAE", guide="pyro_dgm.guides.GaussianEncoder",
    build=_build_vamp_vae,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z_dim": 40, "hidden": 300, "pseudo_inputs": 500},
    training={"lr": 5e-4, "batch_size": 100, "epochs": 60},
    source="seed 001, 'VAE with a VampPrior'",
))
register(ZooEntry(
    name="vamp-hvae",
    description="two-level hierarchical VAE (L = 2) with a VampPrior on z2 (Tomczak & Welling 2018)",
    model="pyro_dgm.models.vamp.VampHVAE", guide="pyro_dgm.guides.hvae.HVAEGuide",
    build=_build_vamp_hvae,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z1_dim": 40, "z2_dim": 40, "hidden": 300, "pseudo_inputs": 500},
    training={"lr": 5e-4, "batch_size": 100, "epochs": 60},
    source="seed 001, 'VAE with a VampPrior', HVAE (L = 2)",
))


# -- issue 6: Attend, Infer, Repeat on multi-MNIST -------------------------------------------
def _build_air(hyper: dict, data) -> tuple:
    from pyro_dgm.guides.air import AIRGuide
    from pyro_dgm.models.air import AIR

    side = data.image_shape[0]
    if data.image_shape != (side, side):
        raise PyroDGMError(f"AIR needs square canvases, got images of shape {data.image_shape}")
    shared = {"canvas": side, "steps": hyper["steps"], "glimpse": hyper["glimpse"],
              "z_what_dim": hyper["z_what_dim"], "hidden": hyper["hidden"]}
    model = AIR(**shared, pres_prior=hyper["pres_prior"], decoder_bias=-hyper["decoder_neg_bias"],
                where_loc=(hyper["where_scale_loc"], 0.0, 0.0),
                where_scale=(hyper["where_scale_sd"], 1.0, 1.0), obs_scale=hyper["obs_scale"],
                compose=hyper["compose"])
    guide = AIRGuide(**shared, rnn_hidden=hyper["rnn_hidden"], baseline_hidden=hyper["hidden"],
                     baseline_lr_scale=hyper["baseline_lr_scale"],
                     where_loc=(hyper["where_scale_loc"], 0.0, 0.0), embed=hyper["embed"])
    return model, guide


register(ZooEntry(
    name="air",
    description="Attend, Infer, Repeat: counts and locates digits with a recurrent guide "
                "(Eslami et al. 2016)",
    model="pyro_dgm.models.air.AIR", guide="pyro_dgm.guides.air.AIRGuide",
    build=_build_air,
    # count-enum sums the number of objects out of the ELBO exactly (no score function): in 10
    # CPU minutes it reached 97.5-97.9 % held-out count accuracy (3 seeds, AIR's data) and
    # TraceGraph_ELBO with baselines 96.7 % (1 seed); where strokes may overlap, 89-92 % against
    # 74 % (benchmarks/air_multi_mnist.py; README). tracegraph-steps is TraceGraph_ELBO with the
    # dependency graph read from the step-numbered site names.
    objective="count-enum", objectives=("count-enum", "tracegraph-steps", "tracegraph", "rws"),
    # pres_prior 0.1, a scale prior as narrow as the data's digit sizes (sd 0.05), glimpses
    # summed and clipped at 1 like the data's ink, and z_what of 20 keep one object per digit;
    # decoder bias -2 (glimpses start blank) and obs sd 0.3 are AIR's; the image embedding
    # (computed once, not at every step) makes a step 1.5-1.8x faster. The baselines (used only
    # by the tracegraph objectives) learn at 0.1 = 100 x lr, as in Pyro's AIR example.
    defaults={"steps": 3, "glimpse": 28, "z_what_dim": 20, "hidden": 200, "rnn_hidden": 256,
              "embed": 256, "pres_prior": 0.1, "decoder_neg_bias": 2.0, "where_scale_loc": 0.5,
              "where_scale_sd": 0.05, "obs_scale": 0.3, "baseline_lr_scale": 100.0,
              "compose": "clip"},
    training={"lr": 1e-3, "batch_size": 64, "epochs": 30},
    datasets=("multi-mnist",),
    source="seed 004, 'from one digit to many digits', 'inference: counting and locating'",
    test_metrics=_lazy("pyro_dgm.infer.counting", "test_metrics"),
    evaluate=_lazy("pyro_dgm.infer.counting", "evaluate"),
    figures=_lazy("pyro_dgm.infer.counting", "figures"),
))
