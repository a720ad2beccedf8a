"""Published data files: finding them, checking their checksums, downloading them, reading ``.mat``.

A :class:`PublishedFile` names one file as its authors published it: its name, the address
the papers downloaded it from, and its published checksum. :func:`obtain` returns the path of
such a file in the data folder (see :func:`pyro_dgm.data.core.resolve_data_dirs`): it looks
for it, downloads it when it is missing, and always verifies its checksum, so that a corrupt
or truncated file is refused with one sentence instead of being read.

Downloads go into a scratch folder first; only files whose checksum matches are moved into
the data folder, so a failed or corrupt download leaves nothing behind. Every download goes
through ``torchvision`` (its data-set classes where it has the set, else
``torchvision.datasets.utils.download_url``). Without a network the error names the file, the
address it comes from and the folder to put it in.

Where no checksum is published (``checksum=None``) the loader checks the file's structure
instead (its arrays, their shapes and values), and says so in its provenance.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyro_dgm.data.core import locate_file, resolve_data_dirs
from pyro_dgm.errors import PyroDGMError

ALGORITHM_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


@dataclass(frozen=True)
class PublishedFile:
    """One data file as published.

    Attributes:
        name: the file's name, e.g. ``"chardata.mat"``.
        url: the address it is published at (the one the papers used).
        folder: the folder, relative to the data folder, it is kept in (torchvision's layout
            where torchvision has the set); the loader also finds it directly in the data folder.
        checksum: the published hex digest, or None where none is published.
        algorithm: ``"sha256"`` or ``"md5"`` (what is published).
        checksum_source: where the digest comes from.
    """

    name: str
    url: str
    folder: str
    checksum: str | None
    algorithm: str = "sha256"
    checksum_source: str = ""

    def candidates(self) -> list[str]:
        """Relative paths where the file may lie in a data folder, most preferred first."""
        return [f"{self.folder}/{self.name}", self.name]

    def target(self, data_dir) -> Path:
        """Where a download puts the file: ``folder/name`` in the first data folder."""
        return resolve_data_dirs(data_dir)[0] / self.folder / self.name


def file_digest(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes under ``algorithm`` (``"sha256"`` or ``"md5"``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path, published: PublishedFile) -> None:
    """Refuse, in one sentence, a file whose digest differs from the published one."""
    if published.checksum is None:
        return
    digest = file_digest(path, published.algorithm)
    if digest != published.checksum:
        raise PyroDGMError(
            f"the data file {path} has {ALGORITHM_NAMES[published.algorithm]} {digest}, not the "
            f"published {published.checksum}: it is corrupt or truncated; delete it and download "
            f"it again from {published.url}.")


def obtain(published: PublishedFile, data_dir=None,
           fetch: Callable[[Path], None] | None = None) -> Path:
    """The path of ``published`` in the data folder, downloaded if missing, checksum verified.

    ``fetch(scratch)`` downloads the file somewhere below the folder ``scratch`` (a
    torchvision data-set class, say); the default fetches ``published.url`` with
    ``torchvision.datasets.utils.download_url``.
    """
    path = locate_file(published.candidates(), data_dir)
    if path is None:
        path = download(published, data_dir, fetch or _fetch_url(published))
    verify(path, published)
    return path


def download(published: PublishedFile, data_dir, fetch: Callable[[Path], None]) -> Path:
    """Run ``fetch`` in a scratch folder, verify the file and move it to its target; one
    sentence naming the file, its address and its target when that fails."""
    target = published.target(data_dir)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            fetch(Path(scratch))
            fetched = next(Path(scratch).rglob(published.name), None)
            if fetched is None:
                raise FileNotFoundError(f"{published.name} was not among the downloaded files")
            verify(fetched, published)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(fetched), target)
    except PyroDGMError:
        raise
    except Exception as error:  # no network, a proxy, a full disk: all end the same way
        searched = ", ".join(str(folder) for folder in resolve_data_dirs(data_dir))
        raise PyroDGMError(
            f"the data file {published.name} is missing from {searched} and downloading it "
            f"failed ({type(error).__name__}: {first_line(error)}); download it from "
            f"{published.url} and put it at {target}.") from None
    return target


def _fetch_url(published: PublishedFile) -> Callable[[Path], None]:
    """A fetch that downloads ``published.url`` into the scratch folder with torchvision."""
    def fetch(scratch: Path) -> None:
        import torchvision.datasets.utils

        torchvision.datasets.utils.download_url(published.url, str(scratch), published.name)
    return fetch


def first_line(error: Exception) -> str:
    """The first line of an exception's message (for one-sentence errors)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def read_mat(path, keys: tuple[str, ...]) -> dict:
    """The arrays ``keys`` of a MATLAB (v5) file, read with ``scipy.io.loadmat``.

    scipy is optional (``pip install scipy``, or the ``[mat]`` extra); without it, or for a file
    that is not a MATLAB file or lacks one of ``keys``, one sentence says so.
    """
    try:
        import scipy.io
    except ImportError:
        raise PyroDGMError(f"reading {Path(path).name} needs scipy, which is not installed; "
                           f"run pip install scipy (or pip install pyro-dgm[mat]).") from None
    try:
        content = scipy.io.loadmat(str(path))
    except Exception as error:  # scipy raises ValueError, TypeError, OSError... on bad files
        raise PyroDGMError(f"could not read {path} as a MATLAB file ({type(error).__name__}: "
                           f"{first_line(error)}); it is corrupt or truncated, download it "
                           f"again.") from None
    missing = [key for key in keys if key not in content]
    if missing:
        raise PyroDGMError(f"{path} lacks the arrays {', '.join(missing)}; it is not the "
                           f"published file, download it again.")
    return {key: content[key] for key in keys}
