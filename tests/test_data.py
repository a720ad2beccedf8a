"""Tests of the data loaders: file lookup, IDX parsing, splits, binarization and mini-batches.

Real data (the MNIST test files and the Frey faces) is read from the project's shared data
folder, next to the repository; tests that need it are skipped when it is absent. Nothing is
ever downloaded: torchvision's MNIST class is replaced by one that fails as without a network.
"""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_dgm.data import Dataset, available_datasets, load_dataset, read_idx, resolve_data_dirs
from pyro_dgm.data.core import find_file
from pyro_dgm.errors import PyroDGMError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_RAW = SHARED_DATA / "MNIST" / "raw"
FREYFACES_FILE = SHARED_DATA / "freyfaces" / "freyfaces.npy"


# --------------------------------------------------------------------------- fixtures



@pytest.fixture(scope="module")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="module")
def mnist_test_files(shared_data):
    """The official test images (10000, 28, 28) and labels (10000,), read straight from the IDX files."""
    images_path = MNIST_RAW / "t10k-images-idx3-ubyte.gz"
    if not images_path.is_file():
        pytest.skip(f"{images_path} is absent")
    return read_idx(images_path), read_idx(MNIST_RAW / "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="module")
def offline_mnist(shared_data, mnist_test_files):
    """Both splits of MNIST under the offline protocol."""
    return {
        split: load_dataset("mnist", split, data_dir=shared_data, protocol="offline")
        for split in ("train", "test")
    }


@pytest.fixture(scope="module")
def freyfaces(shared_data):
    if not FREYFACES_FILE.is_file():
        pytest.skip(f"{FREYFACES_FILE} is absent")
    return {split: load_dataset("freyfaces", split, data_dir=shared_data) for split in ("train", "test")}


def write_idx(path: Path, values: np.ndarray, compress: bool) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when asked)."""
    header = bytes([0, 0, 0x08, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    content = header + values.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def numbered_dataset(n: int, binarize: str = "none") -> Dataset:
    """A data set whose single feature is the example's index, to follow examples through batches."""
    return Dataset(
        name="numbered",
        x=torch.arange(n, dtype=torch.float32).unsqueeze(1),
        y=torch.arange(n),
        image_shape=(1, 1),
        likelihood="gaussian",
        binarize=binarize,
    )


# --------------------------------------------------------------------------- where files are


def test_explicit_data_dir_comes_before_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRO_DGM_DATA", str(tmp_path / "from_env"))
    assert resolve_data_dirs(tmp_path / "explicit") == [tmp_path / "explicit"]


def test_environment_variable_comes_before_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRO_DGM_DATA", str(tmp_path / "from_env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dirs() == [tmp_path / "from_env"]


def test_default_is_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("PYRO_DGM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dirs() == [tmp_path / "cache" / "pyro_dgm"]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dirs() == [tmp_path / "home" / ".cache" / "pyro_dgm"]


def test_find_file_takes_the_first_candidate_present(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"b")
    (tmp_path / "c.bin").write_bytes(b"c")
    found = find_file(["sub/a.bin", "sub/b.bin", "c.bin"], tmp_path, "make it")
    assert found == tmp_path / "sub" / "b.bin"


def test_find_file_names_the_file_the_folder_and_the_remedy(tmp_path):
    with pytest.raises(PyroDGMError) as raised:
        find_file(["sub/wanted.bin", "wanted.bin"], tmp_path, "run the generator")
    message = str(raised.value)
    assert "wanted.bin" in message and str(tmp_path) in message and "run the generator" in message


# --------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_returns_the_written_array(tmp_path, compress):
    values = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    name = "small-idx3-ubyte" + (".gz" if compress else "")
    array = read_idx(write_idx(tmp_path / name, values, compress))
    assert array.dtype == torch.uint8
    assert torch.equal(array, torch.from_numpy(values))


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = write_idx(tmp_path / "cut-idx3-ubyte", np.ones((4, 28, 28), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PyroDGMError, match="cut-idx3-ubyte"):
        read_idx(path)


def test_read_idx_rejects_a_truncated_gzip_file(tmp_path):
    path = write_idx(tmp_path / "cut-idx3-ubyte.gz", np.ones((4, 28, 28), np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(PyroDGMError, match="cut-idx3-ubyte.gz"):
        read_idx(path)


def test_read_idx_rejects_a_file_that_is_not_idx(tmp_path):
    path = tmp_path / "notes-idx1-ubyte"
    path.write_bytes(b"hello, this is text")
    with pytest.raises(PyroDGMError, match="notes-idx1-ubyte"):
        read_idx(path)


# --------------------------------------------------------------------------- MNIST


def test_offline_split_sizes_and_disjoint_indices(offline_mnist):
    train, test = offline_mnist["train"], offline_mnist["test"]
    assert (train.n, test.n) == (8000, 2000)
    assert train.dim == test.dim == 784 and train.image_shape == (28, 28)
    assert train.info["protocol"] == test.info["protocol"] == "offline"
    indices = torch.cat([train.info["indices"], test.info["indices"]])
    assert torch.equal(indices.sort().values, torch.arange(10_000))


def test_offline_split_is_the_documented_permutation(offline_mnist):
    permutation = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(offline_mnist["train"].info["indices"], permutation[:8000])
    assert torch.equal(offline_mnist["test"].info["indices"], permutation[8000:])


def test_offline_examples_match_the_idx_files(offline_mnist, mnist_test_files):
    images, labels = mnist_test_files
    for dataset in offline_mnist.values():
        indices = dataset.info["indices"]
        assert dataset.y.dtype == torch.int64
        assert torch.equal(dataset.y, labels[indices].long())
        expected = images[indices].reshape(len(indices), -1).float() / 255
        assert torch.equal(dataset.x, expected)


def test_mnist_pixels_are_grey_levels_in_the_unit_interval(offline_mnist):
    x = offline_mnist["train"].x
    assert x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert ((x > 0) & (x < 1)).any()  # grey levels, not binary


def test_auto_protocol_uses_the_test_files_when_training_files_are_absent(shared_data, mnist_test_files):
    training_present = (MNIST_RAW / "train-images-idx3-ubyte.gz").is_file()
    dataset = load_dataset("mnist", "test", data_dir=shared_data)
    assert dataset.info["protocol"] == ("full" if training_present else "offline")


def test_static_binarization_is_binary_and_reproducible(shared_data, mnist_test_files, offline_mnist):
    first = load_dataset("mnist", "test", data_dir=shared_data, binarize="static", seed=3, protocol="offline")
    again = load_dataset("mnist", "test", data_dir=shared_data, binarize="static", seed=3, protocol="offline")
    other = load_dataset("mnist", "test", data_dir=shared_data, binarize="static", seed=4, protocol="offline")
    assert set(first.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first.x, again.x)
    assert not torch.equal(first.x, other.x)
    grey_mean = offline_mnist["test"].x.mean(0)
    assert (first.x.mean(0) - grey_mean).abs().max() < 0.06


def test_dynamic_binarization_draws_afresh_each_epoch(shared_data, mnist_test_files, offline_mnist):
    dataset = load_dataset("mnist", "train", data_dir=shared_data, binarize="dynamic", protocol="offline")
    assert torch.equal(dataset.x, offline_mnist["train"].x)  # grey levels are kept
    generator = torch.Generator().manual_seed(0)
    epochs = [torch.cat(list(dataset.batches(1000, shuffle=False, generator=generator))) for _ in range(2)]
    for drawn in epochs:
        assert set(drawn.unique().tolist()) == {0.0, 1.0}
        assert (drawn.mean(0) - dataset.x.mean(0)).abs().max() < 0.04
    assert (epochs[0] != epochs[1]).float().mean() > 0.01


def test_missing_test_files_name_the_file_and_the_folder(tmp_path, download_attempts):
    with pytest.raises(PyroDGMError) as raised:
        load_dataset("mnist", "train", data_dir=tmp_path, protocol="offline")
    message = str(raised.value)
    assert "t10k-images-idx3-ubyte" in message and str(tmp_path) in message
    assert download_attempts == []


@pytest.mark.parametrize("protocol", ["auto", "full"])
def test_missing_training_files_without_network_suggest_the_offline_protocol(
    tmp_path, download_attempts, protocol
):
    with pytest.raises(PyroDGMError) as raised:
        load_dataset("mnist", "train", data_dir=tmp_path, protocol=protocol)
    message = str(raised.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message
    assert "protocol=offline" in message
    assert len(download_attempts) == 1 and download_attempts[0]["download"]
    assert not Path(download_attempts[0]["root"]).exists()  # a scratch folder, removed again


def test_full_protocol_reads_the_official_test_split_without_downloading(
    shared_data, mnist_test_files, download_attempts
):
    dataset = load_dataset("mnist", "test", data_dir=shared_data, protocol="full")
    assert dataset.n == 10_000 and dataset.info["protocol"] == "full"
    assert torch.equal(dataset.y, mnist_test_files[1].long())
    assert download_attempts == []


def test_unknown_mnist_protocol_is_refused(tmp_path):
    with pytest.raises(PyroDGMError, match="offline"):
        load_dataset("mnist", "train", data_dir=tmp_path, protocol="half")


# --------------------------------------------------------------------------- Frey faces


def test_freyfaces_splits(freyfaces):
    train, test = freyfaces["train"], freyfaces["test"]
    assert tuple(train.x.shape) == (1765, 560) and tuple(test.x.shape) == (200, 560)
    assert train.y is None and train.image_shape == (28, 20) and train.likelihood == "gaussian"
    assert train.x.dtype == torch.float32
    assert 0 <= train.x.min() and train.x.max() <= 1 and train.x.max() > 0.5
    indices = torch.cat([train.info["indices"], test.info["indices"]])
    assert torch.equal(indices.sort().values, torch.arange(1965))


def test_freyfaces_split_is_the_documented_permutation(freyfaces):
    permutation = torch.randperm(1965, generator=torch.Generator().manual_seed(0))
    assert torch.equal(freyfaces["test"].info["indices"], permutation[-200:])
    raw = np.load(FREYFACES_FILE, allow_pickle=False)
    expected = torch.from_numpy(raw[permutation[-200:].numpy()]).float() / 255
    assert torch.equal(freyfaces["test"].x, expected)


def test_freyfaces_cannot_be_binarized(shared_data):
    with pytest.raises(PyroDGMError, match="binariz"):
        load_dataset("freyfaces", "train", data_dir=shared_data, binarize="static")


def test_freyfaces_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(PyroDGMError) as raised:
        load_dataset("freyfaces", "train", data_dir=tmp_path)
    message = str(raised.value)
    assert "freyfaces.npy" in message and str(tmp_path) in message and "pickle" in message


def test_freyfaces_wrong_shape_is_refused(tmp_path):
    np.save(tmp_path / "freyfaces.npy", np.zeros((10, 560), np.uint8))
    with pytest.raises(PyroDGMError, match="shape"):
        load_dataset("freyfaces", "train", data_dir=tmp_path)


def test_freyfaces_pickle_is_refused(tmp_path):
    (tmp_path / "freyfaces.npy").write_bytes(pickle.dumps(np.zeros((1965, 560), np.uint8)))
    with pytest.raises(PyroDGMError, match="freyfaces.npy"):
        load_dataset("freyfaces", "train", data_dir=tmp_path)


# --------------------------------------------------------------------------- bars


def test_bars_shapes_and_values():
    train, test = load_dataset("bars", "train"), load_dataset("bars", "test")
    assert tuple(train.x.shape) == (5000, 16) and tuple(test.x.shape) == (1000, 16)
    assert train.image_shape == (4, 4) and train.likelihood == "bernoulli"
    assert set(train.x.unique().tolist()) == {0.0, 1.0}
    assert set(train.y.unique().tolist()) == {0, 1, 2, 3}
    assert torch.equal(train.info["position"].floor().long(), train.y)


def test_bars_are_fixed_by_the_seed():
    first = load_dataset("bars", "train", seed=7, n_train=500)
    again = load_dataset("bars", "train", seed=7, n_train=500)
    other = load_dataset("bars", "train", seed=8, n_train=500)
    test = load_dataset("bars", "test", seed=7, n_test=500)
    assert first.n == 500 and test.n == 500
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    assert not torch.equal(first.x, other.x)
    assert not torch.equal(first.x, test.x)


def test_bars_slide_with_the_label():
    bars = load_dataset("bars", "train")
    images = bars.x.reshape(-1, 4, 4)
    for label in range(4):
        column_means = images[bars.y == label].mean(dim=(0, 1))
        assert column_means.argmax().item() == label
        # rows are identical in distribution, so no row stands out
        row_means = images[bars.y == label].mean(dim=(0, 2))
        assert (row_means - row_means.mean()).abs().max() < 0.05


# --------------------------------------------------------------------------- the registry


def test_available_datasets():
    names = available_datasets()
    assert names == sorted(names)
    assert {"bars", "freyfaces", "mnist"} <= set(names)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(PyroDGMError) as raised:
        load_dataset("cifar", "train")
    assert all(name in str(raised.value) for name in available_datasets())


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"split": "valid"}, ["train", "test"]),
        ({"split": "train", "binarize": "sometimes"}, ["dynamic", "static"]),
        ({"split": "train", "protocol": "offline"}, ["n_train", "n_test"]),
    ],
)
def test_bad_arguments_are_explained(arguments, words):
    with pytest.raises(PyroDGMError) as raised:
        load_dataset("bars", **arguments)
    assert all(word in str(raised.value) for word in words)


# --------------------------------------------------------------------------- mini-batches


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_example_once(shuffle):
    dataset = numbered_dataset(103)
    batches = list(dataset.batches(10, shuffle=shuffle, generator=torch.Generator().manual_seed(1)))
    assert [len(batch) for batch in batches] == [10] * 10 + [3]
    seen = torch.cat(batches).squeeze(1)
    assert torch.equal(seen.sort().values, torch.arange(103, dtype=torch.float32))
    assert torch.equal(seen, torch.arange(103.0)) != shuffle  # shuffled means reordered


def test_batches_drop_last_and_reshuffle_each_epoch():
    dataset = numbered_dataset(103)
    generator = torch.Generator().manual_seed(1)
    first = torch.cat(list(dataset.batches(10, generator=generator, drop_last=True)))
    second = torch.cat(list(dataset.batches(10, generator=generator, drop_last=True)))
    assert len(first) == len(second) == 100
    assert len(first.unique()) == 100
    assert not torch.equal(first, second)


def test_to_moves_tensors_to_the_device():
    dataset = numbered_dataset(5)
    dataset.info["indices"] = torch.arange(5)
    moved = dataset.to("meta")
    assert moved.x.device.type == moved.y.device.type == moved.info["indices"].device.type == "meta"
    assert dataset.x.device.type == "cpu" and len(moved) == 5


def test_dataset_refuses_inconsistent_fields():
    with pytest.raises(PyroDGMError, match="image_shape"):
        Dataset("bad", torch.zeros(3, 10), None, (3, 3), "bernoulli")
    with pytest.raises(PyroDGMError, match="label"):
        Dataset("bad", torch.zeros(3, 9), torch.zeros(2, dtype=torch.long), (3, 3), "bernoulli")


# --------------------------------------------------------------------------- your own tensors


def gaussian_vectors(n: int = 40, dim: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_from_tensors_round_trips_numpy_arrays_and_labels():
    x, y = gaussian_vectors(), np.arange(40) % 4
    data = Dataset.from_tensors(x, y, name="mine", info={"source": "test"})
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.tensor(x, dtype=torch.float32))
    assert data.y.dtype == torch.int64 and torch.equal(data.y, torch.tensor(y))
    assert data.image_shape is None and data.likelihood == "gaussian" and data.binarize == "none"
    assert (data.name, data.n, data.dim, data.info["source"]) == ("mine", 40, 3, "test")
    assert torch.equal(torch.cat(list(data.batches(7, shuffle=False))), data.x)


def test_from_tensors_chooses_the_likelihood_from_the_values():
    unit = torch.rand(20, 6)
    assert Dataset.from_tensors(unit).likelihood == "bernoulli"
    assert Dataset.from_tensors(unit - 0.5).likelihood == "gaussian"
    assert Dataset.from_tensors(unit, likelihood="gaussian").likelihood == "gaussian"
    images = Dataset.from_tensors(unit, image_shape=(2, 3), binarize="static")
    assert images.image_shape == (2, 3) and set(images.x.unique().tolist()) <= {0.0, 1.0}


def _nan_at_one(x):
    x = x.copy()
    x[1, 2] = np.nan
    return x


@pytest.mark.parametrize("arguments, words", [
    (dict(x=_nan_at_one(gaussian_vectors())), ["NaN"]),
    (dict(x=np.full((3, 2), np.inf)), ["infinite"]),
    (dict(x=np.zeros((4, 2, 2))), ["shape", "(4, 2, 2)", "reshape"]),
    (dict(x=np.zeros(5)), ["shape", "(5,)"]),
    (dict(x=[[0.0, 1.0]]), ["numpy array", "list"]),
    (dict(x=gaussian_vectors(), y=np.arange(39)), ["40 examples", "one label"]),
    (dict(x=gaussian_vectors(), y=np.zeros(40)), ["whole numbers", "float"]),
    (dict(x=gaussian_vectors(), likelihood="bernoulli"), ["[0, 1]", "gaussian"]),
    (dict(x=gaussian_vectors(), binarize="dynamic"), ["[0, 1]"]),
    (dict(x=np.full((3, 2), 0.5), binarize="dynamic", likelihood="gaussian"), ["bernoulli"]),
    (dict(x=np.zeros((3, 6)), image_shape=(4, 2)), ["image_shape", "6 values"]),
    (dict(x=np.zeros((3, 6)), image_shape=6), ["image_shape", "(rows, columns)"]),
    (dict(x=np.zeros((3, 6)), likelihood="poisson"), ["likelihood", "'gaussian'"]),
])
def test_from_tensors_refuses_bad_input_with_one_sentence(arguments, words):
    with pytest.raises(PyroDGMError) as raised:
        Dataset.from_tensors(**arguments)
    message = str(raised.value)
    assert all(word in message for word in words), message
    assert "\n" not in message and message.endswith(".")


def test_split_holds_out_a_seeded_fraction_in_the_original_order():
    data = Dataset.from_tensors(torch.arange(50.0).unsqueeze(1), torch.arange(50))
    train, test = data.split(0.2, seed=3)
    assert (len(train), len(test)) == (40, 10)
    assert (train.info["split"], test.info["split"]) == ("train", "test")
    values = torch.cat([train.x, test.x]).squeeze(1)
    assert torch.equal(values.sort().values, torch.arange(50.0))  # disjoint, nothing lost
    assert torch.equal(train.y.float(), train.x.squeeze(1))      # labels follow their examples
    assert torch.equal(test.x, test.x.sort(0).values)            # original order kept
    assert torch.equal(data.split(0.2, seed=3)[1].x, test.x)
    assert not torch.equal(data.split(0.2, seed=4)[1].x, test.x)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, 0.001, True, "0.2"])
def test_split_refuses_a_fraction_that_empties_a_part(fraction):
    data = Dataset.from_tensors(torch.zeros(50, 2))
    with pytest.raises(PyroDGMError, match="test_fraction"):
        data.split(fraction)


# --------------------------------------------------------------------------- data as the model sees it


def test_observed_is_x_for_data_that_are_not_binarized_dynamically():
    data = Dataset.from_tensors(torch.rand(30, 4))
    assert torch.equal(data.observed(), data.x)
    assert torch.equal(data.observed(5, seed=9), data.x[:5])
    static = Dataset.from_tensors(torch.rand(30, 4), binarize="static")
    assert torch.equal(static.observed(), static.x)


def test_observed_under_dynamic_binarization_is_one_seeded_draw_with_mean_x():
    probabilities = torch.rand(2000, 50, generator=torch.Generator().manual_seed(0))
    data = Dataset.from_tensors(probabilities, binarize="dynamic")
    first = data.observed(seed=1)
    assert set(first.unique().tolist()) == {0.0, 1.0} and first.shape == (2000, 50)
    assert torch.equal(first, data.observed(seed=1))
    assert not torch.equal(first, data.observed(seed=2))
    assert torch.equal(data.observed(10, seed=1), first[:10])
    # each value is Bernoulli(p): column means over 2000 examples have standard errors < 0.012,
    # the overall mean one < 0.0016
    assert (first.mean(0) - probabilities.mean(0)).abs().max() < 0.05
    assert abs(first.mean() - probabilities.mean()) < 0.006


def test_observed_refuses_a_bad_count():
    with pytest.raises(PyroDGMError, match="positive whole number"):
        Dataset.from_tensors(torch.rand(3, 2)).observed(0)


# --------------------------------------------------------------------------- module structure

DATA_PACKAGE = Path(__file__).resolve().parents[1] / "pyro_dgm" / "data"


def _imported_modules(path: Path) -> set[str]:
    """The modules a file imports, at any depth (``from a import b`` gives ``a`` and ``a.b``)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_loaders_import_core_and_never_the_registry_or_the_models():
    core_imports = _imported_modules(DATA_PACKAGE / "core.py")
    assert not {name for name in core_imports if name.startswith("pyro_dgm.data")}
    for path in DATA_PACKAGE.glob("*.py"):
        if path.stem in ("__init__", "registry"):
            continue
        imported = _imported_modules(path)
        assert "pyro_dgm.data" not in imported, path.name
        assert not {name for name in imported if name.startswith(("pyro_dgm.data.registry",
                                                                   "pyro_dgm.models"))}, path.name


@pytest.mark.parametrize("module", ["pyro_dgm.data.bars", "pyro_dgm.data.polyreg"])
def test_every_data_module_imports_first_in_a_fresh_interpreter(module):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_failed_download_leaves_no_folders_behind(tmp_path, monkeypatch):
    """torchvision makes ROOT/MNIST/raw before it tries the network; that folder must not stay."""
    import torchvision.datasets
    from urllib.error import URLError

    def failing_download(root, train=True, download=False, **kwargs):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise URLError("no network in tests")
    monkeypatch.setattr(torchvision.datasets, "MNIST", failing_download)
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(PyroDGMError, match="downloading them with torchvision failed"):
        load_dataset("mnist", "train", data_dir=target, protocol="full")
    assert list(target.iterdir()) == []
