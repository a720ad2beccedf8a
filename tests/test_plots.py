"""Every figure is written as a readable PNG, for images and for data that are not images.

The default figure hook of a run (``pyro_dgm.zoo.core.image_figures``: samples, reconstructions, training
curve, latent embedding, code usage) must work on a vector data set (``image_shape=None``),
which is drawn as heat maps of one example per row.
"""

import pytest
import torch
from matplotlib.image import imread

import pyro

from pyro_dgm import Trainer, plots
from pyro_dgm.zoo.core import image_figures as figures
from pyro_dgm.data import Dataset, load_dataset
from pyro_dgm.zoo import get_entry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_width: int = 50):
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    assert imread(path).shape[1] >= min_width, path


@pytest.fixture(scope="module")
def vector_run():
    """A small VAE trained one epoch on a user's own Gaussian vectors (D = 5, labelled)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(120, 5, generator=generator) * 2 + 1
    data = Dataset.from_tensors(x, torch.arange(120) % 3, name="vectors")
    train, test = data.split(0.25)
    entry = get_entry("vae")
    model, guide = entry.build(entry.hyper({"z_dim": 3, "hidden": 16}), train)
    history = Trainer(model, guide, "elbo", lr=1e-2, batch_size=30, progress=False).fit(train, 2)
    return model, guide, train, test, history


def test_the_default_figure_hook_draws_a_vector_data_set(vector_run, tmp_path):
    model, guide, train, test, history = vector_run
    assert train.image_shape is None and train.likelihood == "gaussian"
    figures(model, guide, train, test, history, tmp_path)
    for name in ("samples", "reconstructions", "training_curve", "latent_embedding", "code_usage"):
        assert_png(tmp_path / f"{name}.png")


def test_vector_plots_take_image_shape_none(vector_run, tmp_path):
    model, guide, train, test, _ = vector_run
    assert_png(plots.image_grid(train.x[:20], None, tmp_path / "grid.png", title="data"))
    assert_png(plots.reconstructions(model, guide, test.x, None, tmp_path / "recon.png", n=4))
    assert_png(plots.vector_rows({"a": torch.zeros(3, 2), "b": torch.ones(5, 2)},
                                 tmp_path / "rows.png"))


def test_gaussian_clusters_are_vectors_and_plot_as_such(tmp_path):
    data = load_dataset("gaussian-clusters", "train", n_train=50)
    assert data.image_shape is None
    assert_png(plots.image_grid(data.x, data.image_shape, tmp_path / "clusters.png"))


def test_images_still_plot_as_a_grid(tmp_path):
    bars = load_dataset("bars", "test", n_test=20)
    path = plots.image_grid(bars.x, bars.image_shape, tmp_path / "bars.png", nrow=10)
    assert_png(path)
    height, width = imread(path).shape[:2]
    assert width > height  # two rows of ten 4x4 images


# -- what the figures show (issue 18): each figure is captured before it is saved ----------
@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the plot functions build, instead of their PNG files."""
    figures_ = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures_.append(fig) or path)
    return figures_


def test_sample_grids_have_no_empty_cells_where_the_count_allows():
    for n in range(1, 101):
        columns = plots.grid_columns(n)
        divisors = [c for c in range(1, 11) if n % c == 0 and c * c >= n]
        if divisors:
            assert n % columns == 0 and columns == min(divisors), n
    assert [plots.grid_columns(n) for n in (16, 100, 30, 25)] == [4, 10, 6, 5]


def test_the_training_curve_has_whole_epoch_ticks_and_is_not_flattened_by_epoch_one(drawn):
    history = [{"epoch": e, "loss": loss} for e, loss in enumerate([540.0, 130.0, 120.0, 118.0], 1)]
    plots.training_curve(history, "curve.png")
    ax = drawn[0].axes[0]
    assert all(float(tick).is_integer() for tick in ax.get_xticks())
    low, high = ax.get_ylim()
    assert low < 118.0 and 130.0 < high < 540.0  # epoch 1 runs off the top, labelled
    assert any("540" in text.get_text() for text in ax.texts)


def test_discrete_labels_get_a_legend_not_a_colour_bar(drawn):
    codes = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    plots.embedding(codes, torch.arange(200) % 4, "embedding.png")
    figure = drawn[0]
    assert len(figure.axes) == 1  # a colour bar would be a second axes
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["0", "1", "2", "3"]


def test_final_nll_draws_points_with_their_values_not_bars_on_a_cut_axis(drawn):
    summary = [{"label": label, "final_nll": {"mean": mean, "std": 0.3}}
               for label, mean in (("rws", 126.9), ("nvil", 154.1))]
    plots.final_nll(summary, "nll.png", k=500)
    ax = drawn[0].axes[0]
    assert not ax.patches  # no bars
    assert sorted(text.get_text() for text in ax.texts) == ["126.9", "154.1"]
