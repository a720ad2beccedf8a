"""Fashion-MNIST: 28x28 grey images of clothes, 10 classes, 60,000/10,000; Bernoulli on grey levels.

Files: the four published IDX files, gzip-compressed, in torchvision's layout
``DIR/FashionMNIST/raw/`` (or directly in ``DIR``): ``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``.
Missing files are downloaded with ``torchvision.datasets.FashionMNIST`` (into a scratch
folder, then moved). Their MD5 checksums, the ones torchvision publishes with its
``FashionMNIST`` class, are verified on every load.

Protocol: the official split, 60,000 training and 10,000 test images. Pixels are grey levels
scaled to [0, 1] and scored with a Bernoulli cross-entropy, as for MNIST;
``binarize="dynamic"`` draws new binary images for every batch and ``"static"`` once, from
``seed``. Labels: the 10 classes (0 T-shirt/top ... 9 ankle boot).
"""

from __future__ import annotations

from pathlib import Path

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.data.files import PublishedFile, obtain
from pyro_dgm.data.images import images_to_dataset
from pyro_dgm.data.mnist import read_idx
from pyro_dgm.errors import PyroDGMError

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MD5_SOURCE = "torchvision.datasets.FashionMNIST.resources"


def _published(name: str, md5: str) -> PublishedFile:
    return PublishedFile(name, URL + name, "FashionMNIST/raw", md5, "md5", MD5_SOURCE)


FILES = {
    ("train", "images"): _published("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train", "labels"): _published("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("test", "images"): _published("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("test", "labels"): _published("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
}


def _torchvision_fetch(split: str):
    """A fetch that downloads one split with ``torchvision.datasets.FashionMNIST``."""
    def fetch(scratch: Path) -> None:
        import torchvision.datasets

        torchvision.datasets.FashionMNIST(root=str(scratch), train=split == "train", download=True)
    return fetch


def load_fashion_mnist(split: str, data_dir=None, binarize: str | None = None,
                       seed: int = 0) -> Dataset:
    """Return the official training (60,000) or test (10,000) split of Fashion-MNIST."""
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    images_path, labels_path = (obtain(FILES[split, kind], data_dir, _torchvision_fetch(split))
                                for kind in ("images", "labels"))
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or labels.shape != images.shape[:1]:
        raise PyroDGMError(f"{images_path} and {labels_path} do not match: images of shape "
                           f"{tuple(images.shape)}, labels of shape {tuple(labels.shape)}.")
    return images_to_dataset(
        "fashion-mnist", images.float() / 255.0, labels.long(), binarize=binarize, seed=seed,
        info={"split": split, "protocol": "official", "files": [str(images_path), str(labels_path)]})
