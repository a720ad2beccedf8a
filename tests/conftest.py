"""Shared test set-up: one CPU thread for torch, and the shared data folder beside the repository."""

from pathlib import Path
from urllib.error import URLError

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` from the repository root; tests that need it are skipped when it is absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


@pytest.fixture(autouse=True)
def download_attempts(monkeypatch):
    """Every torchvision MNIST download fails as it would offline; returns the list of attempts."""
    import torchvision.datasets

    attempts = []

    def offline_mnist(root, train=True, download=False, **kwargs):
        attempts.append({"root": root, "train": train, "download": download})
        raise URLError("no network in tests")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline_mnist)
    return attempts
