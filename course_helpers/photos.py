"""The real photo set of the ImageNet parts: Imagenette's 160 px validation images, fetched once.

Imagenette (Jeremy Howard, fast.ai) is ten easy ImageNet classes; its 160 px archive keeps each
photo's shorter side at 160 pixels.  Only where there is internet, and only when asked
(``python -m course_helpers.data --fetch photos``, Binder's ``postBuild``, or
``ch.data.fetch_photo_set()`` with a visible notice), :func:`fetch` downloads the archive with a
progress bar, resumes a broken transfer (HTTP Range), checks its SHA-256, and unpacks the
validation images atomically: into a temporary folder first, renamed into place only when
complete, so an interruption never leaves a half-written photo set.  Lessons read the result
with ``ch.data.photo_set``; nothing here runs during a lesson unless a cell asks for it.

For mirrors and tests, ``COURSE_PHOTO_SET_URL`` and ``COURSE_PHOTO_SET_SHA256`` override the
address and checksum; ``COURSE_CACHE`` moves the cache (default ``~/.cache/seeing-inside-cnns``).
Only the standard library is used here (plus tqdm for the bar).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

#: Where fast.ai publishes the archive (linked from https://github.com/fastai/imagenette).
DEFAULT_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz"
#: Its SHA-256 and size as published in TensorFlow Datasets' checksum list
#: (tensorflow_datasets/datasets/imagenette/checksums.tsv); see data/README.md.
DEFAULT_SHA256 = "64d0c4859f35a461889e0147755a999a48b49bf38a7e0f9bd27003f10db02fe5"
DEFAULT_BYTES = 99_003_388
URL_ENV, SHA_ENV, CACHE_ENV = "COURSE_PHOTO_SET_URL", "COURSE_PHOTO_SET_SHA256", "COURSE_CACHE"

#: The ten classes: (WordNet id = the archive's folder name, name, ImageNet class index).
CLASSES = (("n01440764", "tench", 0), ("n02102040", "English springer", 217),
           ("n02979186", "cassette player", 482), ("n03000684", "chain saw", 491),
           ("n03028079", "church", 497), ("n03394916", "French horn", 566),
           ("n03417042", "garbage truck", 569), ("n03425413", "gas pump", 571),
           ("n03445777", "golf ball", 574), ("n03888257", "parachute", 701))
_WNIDS = {wnid: k for k, (wnid, _, _) in enumerate(CLASSES)}
_MANIFEST = "photo-set.json"
_SUFFIXES = (".jpeg", ".jpg", ".png")
FETCH_COMMAND = "python -m course_helpers.data --fetch photos"


class PhotoSetError(RuntimeError):
    """The photo set could not be fetched (network, checksum, archive layout)."""


class PhotoSetMissing(FileNotFoundError):
    """The photo set is not in the cache (lessons never download it by themselves)."""


# --------------------------------------------------------------------------- settings
def source() -> tuple:
    """``(url, sha256)`` of the archive: the published ones unless the environment overrides."""
    url = os.environ.get(URL_ENV, "").strip() or DEFAULT_URL
    sha = os.environ.get(SHA_ENV, "").strip().lower() or DEFAULT_SHA256
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{SHA_ENV} must be 64 hexadecimal digits (a SHA-256), got {sha!r}.")
    return url, sha


def cache_dir() -> Path:
    """The course's download cache: ``$COURSE_CACHE`` or ``~/.cache/seeing-inside-cnns``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    base = Path(env).expanduser() if env else (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seeing-inside-cnns")
    return base


def photo_dir(sha256: str | None = None) -> Path:
    """The folder of the unpacked set for this checksum (it exists only when complete)."""
    return cache_dir() / f"imagenette2-160-{(sha256 or source()[1])[:12]}"


def available() -> bool:
    """True when the photo set is unpacked in the cache (no network is touched)."""
    return (photo_dir() / _MANIFEST).is_file()


def missing_message() -> str:
    url, _ = source()
    return (f"The photo set (Imagenette's 160 px validation images, about 99 MB to download "
            f"from {url}) is not in the cache ({photo_dir()}), and lessons never download it "
            f"by themselves. With internet, fetch it once: `{FETCH_COMMAND}` in a terminal, or "
            "ch.data.fetch_photo_set() in a cell (Binder does it when it builds). Offline, "
            "everything else works as before: the generated shapes (ch.data.make_shapes) and "
            "the shipped photos (ch.data.sample_images) need no download.")


def files() -> list:
    """``[(path, class number)]`` of every photo in the set, in a fixed order."""
    root = photo_dir()
    if not (root / _MANIFEST).is_file():
        raise PhotoSetMissing(missing_message())
    found = []
    for wnid, k in sorted(_WNIDS.items()):
        for path in sorted((root / "val" / wnid).glob("*")):
            if path.suffix.lower() in _SUFFIXES:
                found.append((path, k))
    return found


# --------------------------------------------------------------------------- fetching
def _download(url: str, part: Path, timeout: float, retries: int, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming what it holds (HTTP Range).  A broken or short
    transfer is retried from where it stopped while it makes progress; a server that sends
    nothing within ``timeout`` seconds fails at once."""
    from tqdm.auto import tqdm

    last = None
    for attempt in range(max(1, retries)):
        have = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": "course-helpers", "Range": f"bytes={have}-"} if have else \
            {"User-Agent": "course-helpers"}
        got = 0
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                length = int(length) if length is not None else None
                if have and resp.status == 206:
                    mode = "ab"
                else:                      # a fresh start (or the server ignored the range)
                    mode, have = "wb", 0
                total = None if length is None else have + length
                with open(part, mode) as out, tqdm(total=total, initial=have, unit="B",
                                                   unit_scale=True, disable=not progress,
                                                   desc="photo set") as bar:
                    while True:
                        chunk = resp.read(1 << 16)
                        if not chunk:
                            break
                        out.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
            if length is not None and got < length:
                raise PhotoSetError(f"the transfer stopped after {have + got:,} of "
                                    f"{total:,} bytes")
            return
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:   # nothing left to send: the part file is whole
                return
            raise PhotoSetError(f"the server answered HTTP {err.code} ({err.reason}) for {url}. "
                                f"Check the address (or {URL_ENV}).") from None
        except (PhotoSetError, urllib.error.URLError, socket.timeout, TimeoutError,
                ConnectionError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", err)
            last = reason
            if got == 0 and attempt == 0 and not isinstance(err, PhotoSetError):
                break                      # it never answered: retrying would only wait longer
            if got == 0 and attempt > 0:
                break                      # no progress since the last try
            time.sleep(min(0.2 * (attempt + 1), 1.0))
    kind = "timed out" if isinstance(last, (socket.timeout, TimeoutError)) else "failed"
    raise PhotoSetError(
        f"Downloading the photo set from {url} {kind} ({last}). Check the internet connection "
        f"and run `{FETCH_COMMAND}` again: it resumes where it stopped. Offline, the lessons' "
        "shapes and shipped photos work without it.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, target: Path) -> dict:
    """Write the archive's validation photos into ``target/val/<wnid>/``; returns the counts.
    Each file is copied by name (never extracted by its stored path)."""
    counts = dict.fromkeys(_WNIDS, 0)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = member.name.replace("\\", "/").split("/")
                if (not member.isfile() or len(parts) < 3 or parts[-3] != "val"
                        or parts[-2] not in _WNIDS or not parts[-1].lower().endswith(_SUFFIXES)
                        or parts[-1].startswith(".")):
                    continue
                folder = target / "val" / parts[-2]
                folder.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(folder / parts[-1], "wb") as dst:
                    shutil.copyfileobj(src, dst)
                counts[parts[-2]] += 1
    except (tarfile.TarError, EOFError, OSError) as err:
        raise PhotoSetError(f"The archive {archive} could not be read ({err}).") from None
    if not sum(counts.values()):
        raise PhotoSetError(f"The archive {archive} holds no validation photos in Imagenette's "
                            "layout (<top>/val/<WordNet id>/<photo>.JPEG).")
    return counts


def fetch(timeout: float = 3.0, retries: int = 5, progress: bool = True,
          notice: bool = True) -> Path:
    """Download, check and unpack the photo set into the cache; returns its folder.

    Does nothing when it is already there.  Prints a notice first (lessons never download
    without saying so).  Raises :class:`PhotoSetError` with what went wrong and what to do; a
    failed checksum deletes the download, so the next try starts clean.
    """
    url, sha = source()
    final = photo_dir(sha)
    if (final / _MANIFEST).is_file():
        return final
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(".unpack-*"):          # left by a process that was killed
        shutil.rmtree(stale, ignore_errors=True)
    part = cache / f"imagenette2-160-{sha[:12]}.tgz.part"
    if notice:
        size = " (about 99 MB)" if url == DEFAULT_URL else ""
        print(f"Downloading the photo set{size} from {url}\ninto {cache} -- once; later runs "
              "read it from there.", flush=True)
    _download(url, part, timeout=timeout, retries=retries, progress=progress)
    got = _sha256(part)
    if got != sha:
        part.unlink()
        raise PhotoSetError(
            f"The downloaded photo set has SHA-256 {got}, expected {sha}: the download was "
            f"damaged or the file changed. It was deleted; run `{FETCH_COMMAND}` again. For a "
            f"mirror with another file, set {URL_ENV} and {SHA_ENV}.")
    tmp = cache / f".unpack-{uuid.uuid4().hex}"
    try:
        counts = _unpack(part, tmp)
        (tmp / _MANIFEST).write_text(json.dumps(
            {"url": url, "sha256": sha, "photos_per_class": counts}, indent=1) + "\n")
        try:
            os.rename(tmp, final)                   # atomic: the set appears whole or not at all
        except OSError:
            if not (final / _MANIFEST).is_file():   # not another process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    part.unlink()
    if notice:
        print(f"Photo set ready: {sum(counts.values())} photos of {len(CLASSES)} classes in "
              f"{final}", flush=True)
    return final
