"""Tests of the papers' data sets and the user's own (issue 19).

Every loader reads small files built here, in every format it takes (IDX, ``.mat``, ``.amat``,
``.npy``, ``.npz``, ``.pt``, folders of PNGs, torchvision's layouts). The published checksums
are those of the real files, so a test that loads a small stand-in first publishes the stand-in's
digest (``publish``). Nothing touches the network: every torchvision download fails as it
would offline, or copies a stand-in file, and the attempts are recorded.
"""

import dataclasses
import json
import gzip
import hashlib
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_dgm.cli import main
from pyro_dgm.data import dataset_options, load_dataset, model_takes
from pyro_dgm.data import binarized_mnist, caltech_silhouettes, fashion_mnist, files, mnist
from pyro_dgm.data import freyfaces, omniglot, svhn
from pyro_dgm.data.files import PublishedFile, file_digest, obtain, read_mat
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import load_run

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def downloads(monkeypatch):
    """Every download through torchvision fails as offline; returns the list of attempts."""
    import torchvision.datasets
    import torchvision.datasets.utils

    attempts = []

    def offline(*args, **kwargs):
        attempts.append((args, kwargs))
        raise URLError("no network in tests")

    for name in ("FashionMNIST", "SVHN"):
        monkeypatch.setattr(torchvision.datasets, name, offline)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    return attempts


def publish(monkeypatch, table: dict, key, path: Path) -> None:
    """Make the stand-in file at ``path`` the published one for ``table[key]``."""
    published = table[key]
    digest = file_digest(path, published.algorithm)
    monkeypatch.setitem(table, key, dataclasses.replace(published, checksum=digest))


def one_sentence(error) -> str:
    """The message of a PyroDGMError, checked to be one line ending in a full stop."""
    message = str(error.value)
    assert "\n" not in message and message.endswith("."), message
    return message


def write_idx(path: Path, values: np.ndarray) -> Path:
    """An IDX file of unsigned bytes, gzip-compressed."""
    header = struct.pack(">BBBB", 0, 0, 0x08, values.ndim) + struct.pack(
        f">{values.ndim}I", *values.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + values.astype(np.uint8).tobytes()))
    return path


def scipy_io():
    return pytest.importorskip("scipy.io")


def matlab_columns(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) as MATLAB stores them: one column per image, column by column."""
    return np.stack([image.flatten(order="F") for image in images], axis=1)


# --------------------------------------------------------------------------- tensors:FILE


def test_npy_vectors_load_and_split_into_a_fixed_held_out_tenth(tmp_path):
    x = RNG.random((50, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    name = f"tensors:{tmp_path / 'x.npy'}"
    train, test = (load_dataset(name, split) for split in ("train", "test"))
    assert (train.n, test.n, train.dim) == (45, 5, 6)
    assert train.image_shape is None and train.likelihood == "bernoulli" and train.y is None
    rows = torch.cat([train.x, test.x])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, torch.from_numpy(x).tolist()))
    # the split is fixed, whatever the run's seed
    assert torch.equal(load_dataset(name, "test", seed=7).x, test.x)
    smaller = load_dataset(name, "test", test_fraction=0.2)
    assert smaller.n == 10


def test_npz_images_with_labels_and_uint8_grey_levels(tmp_path):
    images = RNG.integers(0, 256, (20, 7, 5), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=images, y=np.arange(20) % 3)
    data = load_dataset(f"tensors:{tmp_path / 'd.npz'}", "train")
    assert data.image_shape == (7, 5) and data.dim == 35 and data.n == 18
    assert data.x.min() >= 0 and data.x.max() <= 1
    assert set(data.y.tolist()) <= {0, 1, 2}
    # each row is one image, scaled by 255, with its own label
    index = int(torch.nonzero((torch.from_numpy(images).reshape(20, -1).float() / 255
                               == data.x[0]).all(dim=1))[0])
    assert data.y[0] == index % 3


def test_pt_files_hold_a_tensor_or_a_split_already_made(tmp_path):
    torch.save(torch.rand(30, 4), tmp_path / "one.pt")
    assert load_dataset(f"tensors:{tmp_path / 'one.pt'}", "test").n == 3
    split = {"x_train": torch.rand(8, 4), "x_test": torch.rand(3, 4),
             "y_train": torch.arange(8), "y_test": torch.arange(3)}
    torch.save(split, tmp_path / "split.pt")
    test = load_dataset(f"tensors:{tmp_path / 'split.pt'}", "test")
    assert torch.equal(test.x, split["x_test"]) and torch.equal(test.y, split["y_test"])


def test_colour_arrays_keep_their_channels_or_turn_grey(tmp_path):
    rgb = RNG.random((10, 3, 4, 6)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    name = f"tensors:{tmp_path / 'rgb.npy'}"
    kept = load_dataset(name, "train", test_fraction=0.5)
    assert kept.dim == 72 and kept.image_shape == (12, 6) and kept.info["channels"] == 3
    grey = load_dataset(name, "train", test_fraction=0.5, colour="grey")
    assert grey.dim == 24 and grey.image_shape == (4, 6)
    # ITU-R 601 luma of the kept channels, computed here by hand
    planes = kept.x.reshape(-1, 3, 24)
    luma = 0.299 * planes[:, 0] + 0.587 * planes[:, 1] + 0.114 * planes[:, 2]
    assert torch.allclose(grey.x, luma, atol=1e-3)


def test_static_and_dynamic_binarization_of_your_own_arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.full((40, 5), 0.5, np.float32))
    name = f"tensors:{tmp_path / 'x.npy'}"
    static = load_dataset(name, "train", binarize="static", seed=1)
    assert set(static.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(static.x, load_dataset(name, "train", binarize="static", seed=1).x)
    assert load_dataset(name, "train", binarize="dynamic").binarize == "dynamic"


@pytest.mark.parametrize("array, options, words", [
    (np.full((5, 3), np.nan, np.float32), {}, "NaN"),
    (np.linspace(-2, 2, 30, dtype=np.float32).reshape(10, 3), {}, "likelihood='gaussian'"),
    (np.ones((5, 3), np.float32), {"likelihood": "logistic"}, "not one the zoo's decoders"),
    (np.ones((5, 2, 4, 4), np.float32), {}, "1 or 3 channels"),
    (np.array(["a", "b"]), {}, "numbers"),
])
def test_bad_arrays_are_refused_with_one_sentence(tmp_path, array, options, words):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(PyroDGMError) as error:
        load_dataset(f"tensors:{tmp_path / 'x.npy'}", "train", **options)
    assert words in one_sentence(error)


def test_gaussian_likelihood_takes_any_finite_values(tmp_path):
    np.save(tmp_path / "x.npy", RNG.normal(size=(20, 3)).astype(np.float32))
    data = load_dataset(f"tensors:{tmp_path / 'x.npy'}", "train", likelihood="gaussian")
    assert data.likelihood == "gaussian" and data.x.min() < 0


@pytest.mark.parametrize("file_name, content, words", [
    ("x.csv", b"1,2", "not a .npy, .npz or .pt file"),
    ("missing.npy", None, "does not exist"),
    ("cut.npy", "truncated", "could not read"),
    ("objects.npy", "pickle", "without pickled objects"),
    ("keys.npz", "wrong keys", "expected x"),
])
def test_unreadable_array_files_are_refused_with_one_sentence(tmp_path, file_name, content,
                                                              words):
    path = tmp_path / file_name
    if content == "truncated":
        np.save(path, np.ones((100, 10)))
        path.write_bytes(path.read_bytes()[:500])
    elif content == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "wrong keys":
        np.savez(path, images=np.ones((4, 2)))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(PyroDGMError) as error:
        load_dataset(f"tensors:{path}", "train")
    assert words in one_sentence(error)


def test_a_data_set_name_with_a_path_is_parsed_once(tmp_path):
    assert "path" in dataset_options("tensors:anything.npy")
    assert "size" in dataset_options("folder:somewhere")
    for bad, words in (("mnist:x", "only tensors and folder take a path"),
                       ("tensors:", "names no path"), ("images:x", "only tensors")):
        with pytest.raises(PyroDGMError) as error:
            load_dataset(bad, "train")
        assert words in one_sentence(error)
    with pytest.raises(PyroDGMError, match="--dataset tensors:FILE"):
        load_dataset("tensors", "train")


# --------------------------------------------------------------------------- folder:PATH


def save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_a_folder_of_grey_pngs_without_labels(tmp_path):
    for i in range(10):
        save_png(tmp_path / "faces" / f"{i}.png", np.full((6, 4), 25 * i, np.uint8))
    train = load_dataset(f"folder:{tmp_path / 'faces'}", "train")
    test = load_dataset(f"folder:{tmp_path / 'faces'}", "test")
    assert (train.n, test.n, train.image_shape, train.y) == (9, 1, (6, 4), None)
    levels = sorted(torch.cat([train.x, test.x])[:, 0].tolist())
    assert levels == pytest.approx([25 * i / 255 for i in range(10)])


def test_one_sub_folder_per_label_and_a_resize(tmp_path):
    for label, shade in (("cats", 0), ("dogs", 255)):
        for i in range(5):
            save_png(tmp_path / "pets" / label / f"{i}.png", np.full((10, 8), shade, np.uint8))
    data = load_dataset(f"folder:{tmp_path / 'pets'}", "train", size=[5, 4], test_fraction=0.2)
    assert data.image_shape == (5, 4) and data.n == 8 and data.info["classes"] == ["cats", "dogs"]
    # the label says which folder: cats are black, dogs white
    assert torch.equal(data.x.mean(dim=1), data.y.float())


def test_a_folder_split_into_train_and_test_in_colour(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            save_png(tmp_path / "set" / split / "a" / f"{i}.png",
                     RNG.integers(0, 256, (3, 3, 3), dtype=np.uint8))
    test = load_dataset(f"folder:{tmp_path / 'set'}", "test", colour="colour")
    assert test.n == 2 and test.dim == 27 and test.image_shape == (9, 3)
    assert load_dataset(f"folder:{tmp_path / 'set'}", "train").n == 4


@pytest.mark.parametrize("layout, words", [
    ("sizes", "different sizes"), ("corrupt", "could not read the image"),
    ("empty", "no image files"), ("mixed", "both images and sub-folders"),
    ("absent", "does not exist"),
])
def test_bad_folders_are_refused_with_one_sentence(tmp_path, layout, words):
    folder = tmp_path / "images"
    if layout != "absent":
        folder.mkdir()
    if layout in ("sizes", "mixed"):
        save_png(folder / "a.png", np.zeros((4, 4), np.uint8))
        save_png(folder / ("b.png" if layout == "sizes" else "sub/b.png"), np.zeros((5, 4), np.uint8))
    if layout == "corrupt":
        save_png(folder / "a.png", np.zeros((4, 4), np.uint8))
        (folder / "b.png").write_bytes(b"not an image")
    with pytest.raises(PyroDGMError) as error:
        load_dataset(f"folder:{folder}", "train")
    assert words in one_sentence(error)


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture
def fashion_folder(tmp_path, monkeypatch):
    """A small Fashion-MNIST in torchvision's layout, published as the real files."""
    raw = tmp_path / "FashionMNIST" / "raw"
    for split, n in (("train", 12), ("test", 5)):
        images, labels = (RNG.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
        for kind, values in (("images", images), ("labels", labels)):
            path = write_idx(raw / fashion_mnist.FILES[split, kind].name, values)
            publish(monkeypatch, fashion_mnist.FILES, (split, kind), path)
    return tmp_path


def test_fashion_mnist_reads_torchvision_layout(fashion_folder, downloads):
    train = load_dataset("fashion-mnist", "train", data_dir=fashion_folder)
    test = load_dataset("fashion-mnist", "test", data_dir=fashion_folder)
    assert (train.n, test.n, train.image_shape) == (12, 5, (28, 28))
    assert torch.equal(test.y, torch.arange(5)) and 0 <= train.x.min() <= train.x.max() <= 1
    assert downloads == []


def test_a_corrupt_file_is_refused_by_its_checksum(fashion_folder):
    path = fashion_folder / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(PyroDGMError) as error:
        load_dataset("fashion-mnist", "test", data_dir=fashion_folder)
    message = one_sentence(error)
    assert "corrupt or truncated" in message and "MD5" in message and str(path) in message


def test_the_real_checksums_refuse_a_stand_in_file(tmp_path):
    write_idx(tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte.gz",
              np.zeros((2, 28, 28)))
    with pytest.raises(PyroDGMError, match="not the published bef4ecab"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)


def test_a_missing_file_names_itself_its_address_and_its_place(tmp_path, downloads):
    with pytest.raises(PyroDGMError) as error:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    message = one_sentence(error)
    assert "t10k-images-idx3-ubyte.gz" in message and fashion_mnist.URL in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert len(downloads) == 1 and list(tmp_path.iterdir()) == []


def test_a_download_is_verified_then_moved_into_the_data_folder(tmp_path, monkeypatch):
    """torchvision's FashionMNIST is replaced by one that writes stand-ins into its root."""
    import torchvision.datasets

    stand_in = tmp_path / "published"
    for kind, values in (("images", RNG.integers(0, 256, (3, 28, 28))), ("labels", np.arange(3))):
        path = write_idx(stand_in / fashion_mnist.FILES["test", kind].name, values)
        publish(monkeypatch, fashion_mnist.FILES, ("test", kind), path)

    def fake_download(root, train=True, download=False):
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for path in stand_in.iterdir():
            (raw / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_download)
    data_dir = tmp_path / "data"
    assert load_dataset("fashion-mnist", "test", data_dir=data_dir).n == 3
    assert sorted(p.name for p in (data_dir / "FashionMNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_a_file_published_at_an_address_is_downloaded_with_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    stand_in = write_amat(tmp_path / "published.amat", RNG.integers(0, 2, (2, 784)))
    publish(monkeypatch, binarized_mnist.FILES, "test", stand_in)
    addresses = []

    def fake_download_url(url, root, filename=None, md5=None):
        addresses.append(url)
        (Path(root) / filename).write_bytes(stand_in.read_bytes())
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download_url)
    data = load_dataset("mnist", "test", data_dir=tmp_path / "data", protocol="binarized")
    assert data.n == 2 and addresses == [binarized_mnist.FILES["test"].url]
    assert (tmp_path / "data" / "binarized_mnist" / "binarized_mnist_test.amat").is_file()


def test_a_corrupt_download_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    published = PublishedFile("f.bin", "http://example.invalid/f.bin", "f", "0" * 64)

    def fetch(scratch):
        (scratch / "f.bin").write_bytes(b"wrong bytes")
    with pytest.raises(PyroDGMError, match="corrupt or truncated"):
        obtain(published, tmp_path, fetch)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- SVHN (.mat)


@pytest.fixture
def svhn_folder(tmp_path, monkeypatch):
    io = scipy_io()
    for split, n in (("train", 6), ("test", 4)):
        images = RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        path = tmp_path / "svhn" / svhn.FILES[split].name
        path.parent.mkdir(exist_ok=True)
        io.savemat(path, {"X": images, "y": (np.arange(n) % 10 + 1).reshape(n, 1)})
        publish(monkeypatch, svhn.FILES, split, path)
    return tmp_path


def test_svhn_in_colour_and_in_grey(svhn_folder):
    colour = load_dataset("svhn", "train", data_dir=svhn_folder)
    assert (colour.n, colour.dim, colour.image_shape) == (6, 3072, (96, 32))
    assert colour.y.tolist() == [1, 2, 3, 4, 5, 6] and colour.info["channels"] == 3
    test = load_dataset("svhn", "test", data_dir=svhn_folder, colour="grey")
    assert (test.dim, test.image_shape) == (1024, (32, 32))
    # pixel (row 0, column 1) of the red plane is X[0, 1, 0, n] in the file
    raw = scipy_io().loadmat(svhn_folder / "svhn" / "train_32x32.mat")["X"]
    assert colour.x[2, 1] == pytest.approx(raw[0, 1, 0, 2] / 255)
    assert load_dataset("svhn", "train", data_dir=svhn_folder, likelihood="gaussian").likelihood \
        == "gaussian"


def test_the_digit_zero_labelled_ten_becomes_zero(tmp_path, monkeypatch):
    io = scipy_io()
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.parent.mkdir()
    io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[10], [3]])})
    publish(monkeypatch, svhn.FILES, "test", path)
    assert load_dataset("svhn", "test", data_dir=tmp_path).y.tolist() == [0, 3]


def test_a_mat_file_that_does_not_parse_is_refused(tmp_path, monkeypatch):
    scipy_io()
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.parent.mkdir()
    path.write_bytes(b"MATLAB 5.0 but then nothing")
    publish(monkeypatch, svhn.FILES, "test", path)
    with pytest.raises(PyroDGMError) as error:
        load_dataset("svhn", "test", data_dir=tmp_path)
    assert "could not read" in one_sentence(error)


def test_without_scipy_a_mat_file_asks_for_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(PyroDGMError) as error:
        read_mat(tmp_path / "chardata.mat", ("data",))
    assert "pip install scipy" in one_sentence(error)


# --------------------------------------------------------------------------- OMNIGLOT, Caltech


def test_omniglot_reads_chardata_in_matlab_order(tmp_path, monkeypatch):
    io = scipy_io()
    monkeypatch.setattr(omniglot, "SIZES", {"train": 4, "test": 3})
    images = {split: RNG.random((n, 28, 28)) for split, n in (("train", 4), ("test", 3))}
    images["train"][0] = 0
    images["train"][0, 0, :] = 1  # the top row lit: a transposition would light a column
    alphabets = {"train": [0, 5, 49, 5], "test": [1, 2, 3]}
    one_hot = {split: np.eye(50)[:, labels] for split, labels in alphabets.items()}
    (tmp_path / "omniglot").mkdir()
    io.savemat(tmp_path / "omniglot" / "chardata.mat", {
        "data": matlab_columns(images["train"]), "target": one_hot["train"],
        "testdata": matlab_columns(images["test"]), "testtarget": one_hot["test"]})
    train = load_dataset("omniglot", "train", data_dir=tmp_path, binarize="none")
    assert train.image_shape == (28, 28) and train.y.tolist() == alphabets["train"]
    assert torch.allclose(train.x, torch.from_numpy(images["train"]).float().reshape(4, -1))
    assert train.x[0, :28].sum() == 28 and train.x[0, 28:].sum() == 0
    test = load_dataset("omniglot", "test", data_dir=tmp_path)
    assert test.n == 3 and test.binarize == "dynamic"  # the papers' default


def test_omniglot_of_the_wrong_shape_is_not_the_published_file(tmp_path):
    io = scipy_io()
    io.savemat(tmp_path / "chardata.mat", {"data": np.zeros((784, 3)), "target": np.zeros((50, 3)),
                                           "testdata": np.zeros((784, 1)),
                                           "testtarget": np.zeros((50, 1))})
    with pytest.raises(PyroDGMError) as error:
        load_dataset("omniglot", "train", data_dir=tmp_path)
    assert "(784, 24345)" in one_sentence(error)


def test_a_missing_mat_file_is_fetched_from_the_papers_address_or_explained(tmp_path, downloads):
    with pytest.raises(PyroDGMError) as error:
        load_dataset("caltech101-silhouettes", "train", data_dir=tmp_path)
    message = one_sentence(error)
    assert caltech_silhouettes.FILE.url in message
    assert str(tmp_path / "caltech101-silhouettes" / caltech_silhouettes.FILE.name) in message
    assert downloads[0][0][0] == caltech_silhouettes.FILE.url


def test_caltech_silhouettes_are_inverted_and_transposed(tmp_path, monkeypatch):
    io = scipy_io()
    monkeypatch.setattr(caltech_silhouettes, "SIZES", {"train": 3, "test": 2})
    shapes = np.ones((3, 28, 28))
    shapes[:, :, 0] = 0  # in the file the object is 0: here, the left column
    rows = matlab_columns(shapes).T
    io.savemat(tmp_path / caltech_silhouettes.FILE.name, {
        "train_data": rows, "train_labels": np.array([[1], [101], [7]]),
        "test_data": rows[:2], "test_labels": np.array([[2], [3]])})
    train = load_dataset("caltech101-silhouettes", "train", data_dir=tmp_path)
    assert train.y.tolist() == [0, 100, 6] and train.binarize == "none"
    image = train.x[0].reshape(28, 28)
    assert image[:, 0].sum() == 28 and image[:, 1:].sum() == 0
    assert load_dataset("caltech101-silhouettes", "test", data_dir=tmp_path).n == 2


# --------------------------------------------------------------------------- binarized MNIST


def write_amat(path: Path, images: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in images))
    return path


@pytest.fixture
def amat_folder(tmp_path, monkeypatch):
    for split, n in (("train", 5), ("valid", 2), ("test", 3)):
        path = write_amat(tmp_path / "binarized_mnist" / binarized_mnist.FILES[split].name,
                          RNG.integers(0, 2, (n, 784)))
        publish(monkeypatch, binarized_mnist.FILES, split, path)
    return tmp_path


def test_static_mnist_is_the_published_binarization(amat_folder):
    train = load_dataset("mnist", "train", data_dir=amat_folder, protocol="binarized")
    expected = np.loadtxt(amat_folder / "binarized_mnist" / "binarized_mnist_train.amat")
    assert torch.equal(train.x, torch.from_numpy(expected).float())
    assert (train.binarize, train.y, train.info["protocol"]) == ("static", None, "binarized")
    # binarize=static with the files present chooses the published draw by itself
    test = load_dataset("mnist", "test", data_dir=amat_folder, binarize="static")
    assert test.n == 3 and test.info["protocol"] == "binarized"
    with pytest.raises(PyroDGMError) as error:
        load_dataset("mnist", "test", data_dir=amat_folder, protocol="binarized",
                     binarize="dynamic")
    assert "takes binarize='static'" in one_sentence(error)


def test_a_truncated_amat_is_refused_by_checksum_and_by_its_lines(amat_folder, monkeypatch):
    path = amat_folder / "binarized_mnist" / "binarized_mnist_test.amat"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PyroDGMError, match="SHA-256"):
        load_dataset("mnist", "test", data_dir=amat_folder, protocol="binarized")
    publish(monkeypatch, binarized_mnist.FILES, "test", path)
    with pytest.raises(PyroDGMError) as error:
        load_dataset("mnist", "test", data_dir=amat_folder, protocol="binarized")
    assert "lines of 784 values 0 or 1" in one_sentence(error)


def test_semi_supervised_mnist_refuses_the_unlabelled_binarization(amat_folder):
    with pytest.raises(PyroDGMError, match="has no labels"):
        load_dataset("mnist-ssl", "train", data_dir=amat_folder, protocol="binarized")


# --------------------------------------------------------------------------- real files


def test_the_shared_mnist_test_files_have_the_published_checksums(shared_data_dir):
    raw = shared_data_dir / "MNIST" / "raw"
    if not (raw / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("the MNIST test files are absent")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert file_digest(raw / name, "md5") == mnist.PUBLISHED_MD5[name]
    # the MD5SUMS published beside them say the same
    for line in (raw / "MD5SUMS").read_text().splitlines():
        digest, name = line.split()
        assert mnist.PUBLISHED_MD5[name] == digest


def test_the_shared_frey_faces_have_the_recorded_pixels(shared_data_dir):
    path = shared_data_dir / "freyfaces" / "freyfaces.npy"
    if not path.is_file():
        pytest.skip("the Frey faces are absent")
    pixels = np.load(path)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == freyfaces.PIXELS_SHA256


def test_a_changed_frey_face_is_refused(shared_data_dir, tmp_path):
    path = shared_data_dir / "freyfaces" / "freyfaces.npy"
    if not path.is_file():
        pytest.skip("the Frey faces are absent")
    changed = np.load(path)
    changed[0, 0] ^= 1
    np.save(tmp_path / "freyfaces.npy", changed)
    with pytest.raises(PyroDGMError) as error:
        load_dataset("freyfaces", "train", data_dir=tmp_path)
    assert "corrupt" in one_sentence(error)


def test_a_modified_mnist_test_file_is_refused(shared_data_dir, tmp_path):
    source = shared_data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    if not source.is_file():
        pytest.skip("the MNIST test files are absent")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (raw / name).write_bytes((source.parent / name).read_bytes())
    labels = gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:-1] + b"\x03"))
    with pytest.raises(PyroDGMError, match="not the published ec29112d"):
        load_dataset("mnist", "test", data_dir=tmp_path, protocol="offline")


# --------------------------------------------------------------------------- models and CLI


def test_every_image_model_takes_every_flat_image_set_by_one_rule():
    image_model = ("bars", "mnist", "freyfaces")
    for name in ("tensors:x.npy", "folder:imgs", "omniglot", "svhn", "fashion-mnist",
                 "caltech101-silhouettes", "mnist"):
        assert model_takes(image_model, name)
    assert not model_takes(("multi-mnist",), "svhn")
    assert not model_takes(("mnist-ssl", "bars-ssl"), "tensors:x.npy")
    assert not model_takes(("gaussian-clusters",), "folder:imgs")
    assert model_takes(("multi-mnist",), "multi-mnist")


def test_train_a_vae_on_your_own_file_from_the_command_line(tmp_path):
    np.save(tmp_path / "x.npy", RNG.random((40, 3, 4, 4)).astype(np.float32))
    out = tmp_path / "run"
    status = main(["train", "vae", "--dataset", f"tensors:{tmp_path / 'x.npy'}", "--epochs", "1",
                   "--set", "hidden=8", "--set", "z_dim=2", "--out", str(out), "--quiet"])
    assert status == 0 and (out / "metrics.json").is_file()
    grey = tmp_path / "grey"
    assert main(["train", "vae", "--dataset", f"tensors:{tmp_path / 'x.npy'}", "--epochs", "0",
                 "--set", "colour=grey", "--out", str(grey), "--quiet"]) == 0
    # the runs reload from config.json, the colour one with 3 x 16 values per image
    colour_run, grey_run = load_run(out), load_run(grey)
    assert (colour_run.train.dim, colour_run.train.image_shape) == (48, (12, 4))
    assert (grey_run.train.dim, grey_run.test.n) == (16, 4)
    codes = colour_run.guide.encode(colour_run.test.x)
    assert codes.shape[0] == colour_run.test.n and bool(torch.isfinite(codes).all())


@pytest.mark.parametrize("argv_tail, words", [
    (["vae", "--dataset", "tensors:NAN"], "NaN"),
    (["air", "--dataset", "svhn"], "not set up for data set 'svhn'"),
    (["vae", "--dataset", "pictures:x"], "only tensors and folder take a path"),
])
def test_bad_data_on_the_command_line_exit_2_with_one_line(tmp_path, capsys, argv_tail, words):
    np.save(tmp_path / "nan.npy", np.full((4, 2), np.nan))
    argv = ["train", *[a.replace("NAN", str(tmp_path / "nan.npy")) for a in argv_tail],
            "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_run_on_relative_user_files_is_found_again_from_another_folder(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    np.save(work / "mine.npy", (np.random.default_rng(0).random((120, 16)) > 0.5).astype("f4"))
    monkeypatch.chdir(work)
    assert main(["train", "vae", "--dataset", "tensors:mine.npy", "--epochs", "1", "--quiet",
                 "--threads", "1", "--set", "hidden=8", "--set", "z_dim=2"]) == 0
    run = work / "runs" / "vae-tensors"  # the folder is named by the data set, not its path
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == f"tensors:{work / 'mine.npy'}"
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run), "--iwae-samples", "3", "--quiet"]) == 0
