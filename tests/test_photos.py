"""The photo set's fetch code (ch.photos) and ch.data.photo_set, against a loopback HTTP server.

The server runs in a thread on 127.0.0.1 and serves a small archive built here in Imagenette's
layout (<top>/train|val/<WordNet id>/<photo>.JPEG); each photo is one flat colour that encodes
its class, so the labels photo_set returns can be read back from the pixels.  No internet.
"""
import hashlib
import io
import shutil
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

import course_helpers as ch
from course_helpers import data, photos

PER_CLASS = 3


def colour_of(k):
    """A flat colour for class k, far from every other class's (JPEG keeps it within a few levels)."""
    return (25 * k + 10, 250 - 25 * k, 128 if k % 2 else 40)


def build_archive(per_class=PER_CLASS) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, payload):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        for k, (wnid, _, _) in enumerate(photos.CLASSES):
            for split, count in (("val", per_class), ("train", 2)):
                for i in range(count):
                    jpeg = io.BytesIO()
                    # not square, like Imagenette's (shorter side 160 there)
                    Image.new("RGB", (48 + 4 * i, 40), colour_of(k)).save(jpeg, "JPEG", quality=95)
                    add(f"imagenette2-160/{split}/{wnid}/{wnid}_{split}{i}.JPEG", jpeg.getvalue())
        add("imagenette2-160/noisy_imagenette.csv", b"path,label\n")
        add("imagenette2-160/val/../../escape.JPEG", b"not a photo")   # never written outside
    return buf.getvalue()


ARCHIVE = build_archive()
SHA = hashlib.sha256(ARCHIVE).hexdigest()


class Server:
    """A loopback server: ``mode`` is 'good' (honours Range), 'corrupt' (one byte flipped),
    'truncate-once' (the first answer stops halfway), 'truncate-always' (every answer stops
    halfway, Range ignored), 'silent' (accepts, never answers) or 'missing' (404)."""

    def __init__(self, mode="good", body=ARCHIVE):
        self.mode, self.body, self.requests = mode, body, []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.headers.get("Range"))
                if outer.mode == "silent":
                    outer.stop.wait(30)
                    return
                if outer.mode == "missing":
                    self.send_error(404, "Not Found")
                    return
                body = outer.body
                if outer.mode == "corrupt":
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                start = 0
                ranged = self.headers.get("Range")
                if ranged and outer.mode != "truncate-always":
                    start = int(ranged.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                part = body[start:]
                if outer.mode == "truncate-always" or (outer.mode == "truncate-once"
                                                       and len(outer.requests) == 1):
                    part = part[:len(part) // 2]
                self.wfile.write(part)
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/imagenette2-160.tgz"

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(photos.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(photos.SHA_ENV, SHA)
    return tmp_path / "cache"


@pytest.fixture
def serve(cache, monkeypatch):
    servers = []

    def start(mode="good", body=ARCHIVE):
        server = Server(mode, body)
        servers.append(server)
        monkeypatch.setenv(photos.URL_ENV, server.url)
        return server

    yield start
    for server in servers:
        server.close()


def leftovers(cache):
    """Everything in the cache except the finished photo set."""
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def decode_classes(images):
    """The class of each flat-coloured image, from its mean colour (nearest class colour)."""
    means = images.reshape(len(images), -1, 3).mean(1) * 255
    table = np.array([colour_of(k) for k in range(len(photos.CLASSES))], float)
    return np.argmin(((means[:, None, :] - table[None]) ** 2).sum(-1), axis=1)


# --------------------------------------------------------------------------- the classes
def test_the_ten_classes_are_imagenet_classes_by_name():
    names = (data.PHOTO_CLASSES, data.PHOTO_IMAGENET_INDEX)
    assert len(names[0]) == 10 and len(set(names[1])) == 10
    imagenet = (ch.config.data_dir() / "imagenet_classes.txt").read_text().splitlines()
    for name, index in zip(*names):
        assert imagenet[index] == name
    # WordNet ids sort in ImageNet's index order (Keras's class index is sorted by id)
    assert [w for w, _, _ in photos.CLASSES] == sorted(w for w, _, _ in photos.CLASSES)


# --------------------------------------------------------------------------- a good fetch
def test_fetch_unpacks_the_validation_photos_and_photo_set_reads_them(serve, cache, capsys):
    server = serve("good")
    assert not data.photo_set_available()
    folder = photos.fetch(progress=False)
    out = capsys.readouterr().out
    assert "Downloading the photo set" in out and server.url in out and "ready" in out
    assert data.photo_set_available() and folder.parent == cache
    assert leftovers(cache) == [folder.name]          # no archive, no temporary folder left
    assert len(photos.files()) == 10 * PER_CLASS       # validation only: no train, no csv
    assert not (cache.parent / "escape.JPEG").exists() and not list(cache.rglob("escape*"))

    got = data.photo_set(n=23, size=32, seed=1)
    images, labels, imagenet = got
    assert images.shape == (23, 32, 32, 3) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(decode_classes(images), labels)   # labels match the pixels
    counts = np.bincount(labels, minlength=10)
    assert sorted(counts) == [2] * 7 + [3] * 3                         # equal shares
    assert np.all(np.diff(labels) >= 0)                                # sorted by class
    np.testing.assert_array_equal(imagenet, np.array(data.PHOTO_IMAGENET_INDEX)[labels])
    assert [p.parent.name for p in got.paths] == [photos.CLASSES[k][0] for k in labels]
    assert got.images is images and got.class_names == data.PHOTO_CLASSES

    again = data.photo_set(n=23, size=32, seed=1)
    np.testing.assert_array_equal(again.images, images)
    other = data.photo_set(n=23, size=32, seed=2)
    assert other.paths != got.paths
    # a second fetch finds it and does not touch the network
    n_requests = len(server.requests)
    assert photos.fetch(progress=False) == folder and len(server.requests) == n_requests


def test_photo_set_checks_its_arguments(serve):
    serve("good")
    photos.fetch(progress=False, notice=False)
    with pytest.raises(ValueError, match="n is 31, but the photo set holds 30 photos"):
        data.photo_set(n=31, size=32)
    with pytest.raises(ValueError, match="size must be at least 16, got 4"):
        data.photo_set(n=3, size=4)
    with pytest.raises(TypeError, match="n must be a whole number, got float 2.5"):
        data.photo_set(n=2.5)
    assert data.photo_set(n=np.int64(10), size=16.0).images.shape == (10, 16, 16, 3)


def test_the_command_line_fetch(serve, cache, capsys):
    serve("good")
    assert data._main(["--fetch", "photos"]) == 0
    assert data.photo_set_available()
    serve("missing")
    shutil.rmtree(photos.photo_dir())
    assert data._main(["--fetch", "photos"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and photos.URL_ENV in err
    assert leftovers(cache) == []


# --------------------------------------------------------------------------- failures
def test_without_the_photo_set_asking_fails_at_once_and_says_how_to_get_it(cache):
    start = time.perf_counter()
    with pytest.raises(photos.PhotoSetMissing) as info:
        data.photo_set(10)
    assert time.perf_counter() - start < 5
    text = str(info.value)
    assert "python -m course_helpers.data --fetch photos" in text
    assert "make_shapes" in text and "never download" in text
    assert not data.photo_set_available()


def test_a_corrupted_archive_is_refused_and_the_cache_left_clean(serve, cache):
    serve("corrupt")
    with pytest.raises(photos.PhotoSetError, match=f"expected {SHA}.*deleted"):
        photos.fetch(progress=False, notice=False)
    assert leftovers(cache) == [] and not data.photo_set_available()
    serve("good")                                   # the next try starts clean and succeeds
    photos.fetch(progress=False, notice=False)
    assert len(photos.files()) == 10 * PER_CLASS


def test_a_truncated_transfer_resumes_with_a_range_request(serve, cache):
    server = serve("truncate-once")
    photos.fetch(progress=False, notice=False)
    half = len(ARCHIVE) // 2
    assert server.requests == [None, f"bytes={half}-"]
    assert len(photos.files()) == 10 * PER_CLASS and len(leftovers(cache)) == 1


def test_a_transfer_that_always_breaks_gives_a_clear_error_and_no_photo_set(serve, cache):
    server = serve("truncate-always")
    with pytest.raises(photos.PhotoSetError, match="stopped after .* bytes.*again: it resumes"):
        photos.fetch(progress=False, notice=False, retries=3)
    assert len(server.requests) == 3
    assert not data.photo_set_available()
    assert [p for p in leftovers(cache) if not p.endswith(".part")] == []


def test_a_server_that_never_answers_times_out_quickly_with_a_clear_error(serve, cache):
    serve("silent")
    start = time.perf_counter()
    with pytest.raises(photos.PhotoSetError, match="timed out.*internet connection"):
        photos.fetch(progress=False, notice=False)
    assert time.perf_counter() - start < 5
    assert leftovers(cache) == [] and not data.photo_set_available()


def test_an_interrupted_unpack_leaves_no_half_photo_set(serve, cache, monkeypatch):
    serve("good")

    def broken(archive, target):
        (target / "val").mkdir(parents=True)
        (target / "val" / "half.JPEG").write_bytes(b"x")
        raise KeyboardInterrupt                      # e.g. the learner stops the cell

    monkeypatch.setattr(photos, "_unpack", broken)
    with pytest.raises(KeyboardInterrupt):
        photos.fetch(progress=False, notice=False)
    assert not data.photo_set_available()
    assert not any(p.startswith(".unpack") or p == photos.photo_dir().name
                   for p in leftovers(cache))
    monkeypatch.undo()
    monkeypatch.setenv(photos.CACHE_ENV, str(cache))
    monkeypatch.setenv(photos.SHA_ENV, SHA)
    serve("good")
    photos.fetch(progress=False, notice=False)    # the kept download is reused, then removed
    assert leftovers(cache) == [photos.photo_dir().name]


def test_a_bad_checksum_override_names_the_variable(monkeypatch):
    monkeypatch.setenv(photos.SHA_ENV, "abc")
    with pytest.raises(ValueError, match="COURSE_PHOTO_SET_SHA256 must be 64 hexadecimal"):
        photos.source()
