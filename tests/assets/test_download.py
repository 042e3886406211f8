"""Tests for dgn_am.assets (catalogue, fetch, archives) against a loopback HTTP server (no internet needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dgn_am.assets import catalogue, models
from dgn_am.assets import fetch as dl

# ----------------------------------------------------------------------------------------
# A small file server that understands Range and can be told to misbehave
# ----------------------------------------------------------------------------------------


class FileServer:
    """Serves files from ``root`` on 127.0.0.1 and records every request it sees."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.ignore_range = False
        self.not_found: set[str] = set()
        self.drop_after: dict[str, list[int]] = {}  # path -> [bytes to send, times left]
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            # The name is http.server's convention.
            def do_GET(self) -> None:
                server._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def count(self, name: str | None = None) -> int:
        with self._lock:
            return sum(1 for path, _ in self.requests if name is None or path == "/" + name)

    def ranges(self, name: str) -> list[str | None]:
        with self._lock:
            return [rng for path, rng in self.requests if path == "/" + name]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        with self._lock:
            self.requests.append((h.path, rng))
        file = self.root / h.path.lstrip("/")
        if h.path.lstrip("/") in self.not_found or not file.is_file():
            h.send_error(404)
            return
        data = file.read_bytes()
        start, status = 0, 200
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not self.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        rule = self.drop_after.get(h.path.lstrip("/"))
        if rule and rule[1] > 0:
            rule[1] -= 1
            h.wfile.write(body[: rule[0]])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)  # the client sees a short body
            return
        h.wfile.write(body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    srv = FileServer(root)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    return tmp_path / "nets"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(n: int = 300_000, seed: int = 1) -> bytes:
    """Deterministic, non-repeating bytes (so a wrong offset changes the hash)."""
    out = bytearray()
    block = seed.to_bytes(4, "little")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def serve(server: FileServer, name: str, data: bytes) -> str:
    path = server.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return server.url(name)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, int | None]] = []

    def __call__(self, event: str, name: str, done: int, total: int | None) -> None:
        self.seen.append((event, name, done, total))

    def kinds(self, name: str | None = None) -> list[str]:
        return [e for e, n, _, _ in self.seen if name is None or n == name]


def manifest(nets: Path) -> dict[str, str]:
    return json.loads((nets / "manifest.json").read_text())


# ----------------------------------------------------------------------------------------
# Plain files
# ----------------------------------------------------------------------------------------


def test_download_verifies_published_sha256(server: FileServer, nets: Path) -> None:
    data = payload()
    entry = catalogue.Entry(dest="released/misc/a.txt", urls=(serve(server, "a.txt", data),), sha256=sha256(data))
    events = Events()
    out = dl.download_entries([entry], nets, progress=events, timeout=5)
    assert out == [nets / "released/misc/a.txt"]
    assert out[0].read_bytes() == data
    assert not (nets / "released/misc/a.txt.part").exists()
    assert events.kinds()[0] == "start" and events.kinds()[-1] == "done"
    assert events.seen[-1][2] == len(data)


def test_published_sha1_is_used(server: FileServer, nets: Path) -> None:
    data = payload(1000)
    good = catalogue.Entry(dest="m/x.bin", urls=(serve(server, "x.bin", data),), sha1=hashlib.sha1(data).hexdigest())
    assert dl.download_entries([good], nets, timeout=5)[0].read_bytes() == data
    bad = dataclasses.replace(good, dest="m/y.bin", sha1="0" * 40)
    with pytest.raises(catalogue.DownloadError, match="expected sha1 0{40}"):
        dl.download_entries([bad], nets, timeout=5)


def test_wrong_checksum_raises_and_leaves_nothing(server: FileServer, nets: Path) -> None:
    data = payload()
    entry = catalogue.Entry(dest="caffenet/w.caffemodel", urls=(serve(server, "w", data),), sha256="ab" * 32)
    with pytest.raises(catalogue.DownloadError) as info:
        dl.download_entries([entry], nets, timeout=5)
    msg = str(info.value)
    assert "\n" not in msg
    assert "ab" * 32 in msg and sha256(data) in msg
    assert not (nets / "caffenet/w.caffemodel").exists()
    assert not (nets / "caffenet/w.caffemodel.part").exists()


def test_resume_sends_range_and_appends(server: FileServer, nets: Path) -> None:
    data = payload()
    half = len(data) // 2
    entry = catalogue.Entry(dest="g/r.bin", urls=(serve(server, "r.bin", data),), sha256=sha256(data))
    part = nets / "g/r.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:half])
    events = Events()
    dl.download_entries([entry], nets, progress=events, timeout=5)
    assert server.ranges("r.bin") == [f"bytes={half}-"]
    assert sha256((nets / "g/r.bin").read_bytes()) == sha256(data)
    assert not part.exists()
    start = [s for s in events.seen if s[0] == "start"]
    assert start == [("start", "g/r.bin", half, len(data))]


def test_server_ignoring_range_restarts_from_zero(server: FileServer, nets: Path) -> None:
    data = payload()
    half = len(data) // 2
    entry = catalogue.Entry(dest="g/i.bin", urls=(serve(server, "i.bin", data),), sha256=sha256(data))
    part = nets / "g/i.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * half)  # wrong bytes: appending to them could never verify
    server.ignore_range = True
    dl.download_entries([entry], nets, timeout=5)
    assert server.ranges("i.bin") == [f"bytes={half}-"]
    assert (nets / "g/i.bin").read_bytes() == data


def test_dropped_connection_is_resumed(server: FileServer, nets: Path) -> None:
    data = payload()
    entry = catalogue.Entry(dest="g/d.bin", urls=(serve(server, "d.bin", data),), sha256=sha256(data))
    server.drop_after["d.bin"] = [100_000, 1]
    events = Events()
    dl.download_entries([entry], nets, progress=events, timeout=5)
    assert server.ranges("d.bin") == [None, "bytes=100000-"]
    assert (nets / "g/d.bin").read_bytes() == data
    assert "retry" in events.kinds()


def test_416_on_a_stale_part_restarts(server: FileServer, nets: Path) -> None:
    data = payload(5000)
    entry = catalogue.Entry(dest="g/s.bin", urls=(serve(server, "s.bin", data),), sha256=sha256(data))
    part = nets / "g/s.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 9000)  # longer than the file: the server answers 416
    dl.download_entries([entry], nets, timeout=5)
    assert server.ranges("s.bin") == ["bytes=9000-", None]
    assert (nets / "g/s.bin").read_bytes() == data


def test_mirror_is_tried_after_a_failing_primary(server: FileServer, nets: Path) -> None:
    data = payload(4000)
    serve(server, "mirror.bin", data)
    entry = catalogue.Entry(dest="g/m.bin", urls=(server.url("gone.bin"), server.url("mirror.bin")))
    dl.download_entries([entry], nets, timeout=5)
    assert server.count("gone.bin") == 1 and server.count("mirror.bin") == 1
    assert (nets / "g/m.bin").read_bytes() == data


def test_url_map_rewrites_catalogue_urls(server: FileServer, nets: Path) -> None:
    data = payload(2000)
    serve(server, "models/u.bin", data)
    entry = catalogue.Entry(dest="u/u.bin", urls=("http://example.invalid/models/u.bin",), sha256=sha256(data))
    dl.download_entries(
        [entry], nets, url_map=lambda u: u.replace("http://example.invalid", server.base), timeout=5
    )
    assert server.count("models/u.bin") == 1
    assert (nets / "u/u.bin").read_bytes() == data


# ----------------------------------------------------------------------------------------
# Trust on first use
# ----------------------------------------------------------------------------------------


def test_trust_on_first_use_records_then_enforces(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    entry = catalogue.Entry(dest="downloads/t.bin", urls=(serve(server, "t.bin", data),))
    first = tmp_path / "first"
    dl.download_entries([entry], first, timeout=5)
    assert manifest(first) == {"downloads/t.bin": sha256(data)}

    (server.root / "t.bin").write_bytes(payload(seed=2))  # the source changes under us
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "manifest.json").write_text((first / "manifest.json").read_text())
    with pytest.raises(catalogue.DownloadError, match="checksum mismatch for downloads/t.bin") as info:
        dl.download_entries([entry], fresh, timeout=5)
    assert "\n" not in str(info.value) and sha256(data) in str(info.value)
    assert not (fresh / "downloads/t.bin").exists()
    assert not (fresh / "downloads/t.bin.part").exists()
    assert manifest(fresh) == {"downloads/t.bin": sha256(data)}  # the record is not overwritten

    # The same in the original folder once the file is gone: the recorded value still rules.
    (first / "downloads/t.bin").unlink()
    with pytest.raises(catalogue.DownloadError, match="checksum mismatch"):
        dl.download_entries([entry], first, timeout=5)


def test_hand_placed_file_without_hash_is_recorded(server: FileServer, nets: Path) -> None:
    data = payload(3000)
    entry = catalogue.Entry(dest="downloads/h.bin", urls=(server.url("nowhere"),))
    (nets / "downloads").mkdir(parents=True)
    (nets / "downloads/h.bin").write_bytes(data)
    dl.download_entries([entry], nets, timeout=5)
    assert server.count() == 0
    assert manifest(nets) == {"downloads/h.bin": sha256(data)}


# ----------------------------------------------------------------------------------------
# Archives
# ----------------------------------------------------------------------------------------


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


GEN = {layer: payload(5000, seed=i + 10) for i, layer in enumerate(("fc6", "fc7", "pool5"))}


def test_zip_extraction_picks_generators(server: FileServer, nets: Path) -> None:
    archive = make_zip(
        {
            "release_deepsim_v0/fc6/generator.caffemodel": GEN["fc6"],
            "release_deepsim_v0/fc6/generator.prototxt": b"proto",
            "release_deepsim_v0/fc7/generator.caffemodel": GEN["fc7"],
            "release_deepsim_v0/pool5/generator.caffemodel": GEN["pool5"],
            "release_deepsim_v0/norm1/generator.caffemodel": b"not wanted",
            "__MACOSX/release_deepsim_v0/fc6/._generator.caffemodel": b"resource fork",
            "release_deepsim_v0/fc6/old_generator.caffemodel": b"decoy",
            "release_deepsim_v0/nofc6/generator.caffemodel": b"decoy",
        }
    )
    entry = dataclasses.replace(catalogue.GENERATORS, urls=(serve(server, "deepsim.zip", archive),))
    events = Events()
    out = dl.download_entries([entry], nets, progress=events, timeout=5)
    assert out == [nets / f"generators/{layer}/generator.caffemodel" for layer in ("fc6", "fc7", "pool5")]
    for layer in ("fc6", "fc7", "pool5"):
        assert (nets / f"generators/{layer}/generator.caffemodel").read_bytes() == GEN[layer]
    assert (nets / "downloads/release_deepsim_v0.zip").read_bytes() == archive  # kept for re-runs
    assert not (nets / "generators/norm1").exists()
    recorded = manifest(nets)
    assert recorded["downloads/release_deepsim_v0.zip"] == sha256(archive)
    assert recorded["generators/pool5/generator.caffemodel"] == sha256(GEN["pool5"])
    assert len(recorded) == 4
    assert "extract" in events.kinds("generators/fc7/generator.caffemodel")
    assert not list(nets.rglob("*.tmp"))


def test_zip_without_pool5_names_it(server: FileServer, nets: Path) -> None:
    archive = make_zip(
        {
            "a/b/fc6/generator.caffemodel": GEN["fc6"],
            "a/b/fc7/generator.caffemodel": GEN["fc7"],
            "a/b/pool5/generator.prototxt": b"no weights",
        }
    )
    entry = dataclasses.replace(catalogue.GENERATORS, urls=(serve(server, "deepsim.zip", archive),))
    with pytest.raises(catalogue.DownloadError, match="pool5/generator.caffemodel") as info:
        dl.download_entries([entry], nets, timeout=5)
    assert "fc6/generator" not in str(info.value)
    assert not (nets / "generators/pool5/generator.caffemodel").exists()


def test_zip_extraction_is_case_sensitive(server: FileServer, nets: Path) -> None:
    archive = make_zip(
        {
            "x/FC6/generator.caffemodel": GEN["fc6"],
            "x/fc7/generator.caffemodel": GEN["fc7"],
            "x/pool5/generator.caffemodel": GEN["pool5"],
        }
    )
    entry = dataclasses.replace(catalogue.GENERATORS, urls=(serve(server, "deepsim.zip", archive),))
    with pytest.raises(catalogue.DownloadError, match="'fc6/generator.caffemodel'"):
        dl.download_entries([entry], nets, timeout=5)


def test_tar_extracts_places_member_and_ignores_evil(server: FileServer, tmp_path: Path) -> None:
    nets = tmp_path / "deep" / "nets"
    weights = payload(7000, seed=3)
    archive = make_tar(
        {
            "placesCNN_upgraded/places205CNN_iter_300000.caffemodel": weights,
            "../evil": b"escape",
            "/abs_evil": b"escape",
            "placesCNN_upgraded/places205CNN_deploy.prototxt": b"proto",
        }
    )
    entry = dataclasses.replace(catalogue.PLACES205, urls=(serve(server, "placesCNN.tar.gz", archive),))
    out = dl.download_entries([entry], nets, timeout=5)
    assert out == [nets / "placesCNN/places205CNN_iter_300000.caffemodel"]
    assert out[0].read_bytes() == weights
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert (nets / "downloads/placesCNN.tar.gz").is_file()
    assert manifest(nets)["placesCNN/places205CNN_iter_300000.caffemodel"] == sha256(weights)


def test_tar_rejects_an_unsafe_matching_member(server: FileServer, tmp_path: Path) -> None:
    nets = tmp_path / "deep" / "nets"
    archive = make_tar({"../places205CNN_iter_300000.caffemodel": b"w"})
    entry = dataclasses.replace(catalogue.PLACES205, urls=(serve(server, "placesCNN.tar.gz", archive),))
    with pytest.raises(catalogue.DownloadError, match="unsafe"):
        dl.download_entries([entry], nets, timeout=5)
    assert not list(tmp_path.rglob("places205CNN_iter_300000.caffemodel"))


def test_extracted_member_must_match_its_record(server: FileServer, nets: Path) -> None:
    archive = make_tar({"p/places205CNN_iter_300000.caffemodel": b"new weights"})
    entry = dataclasses.replace(catalogue.PLACES205, urls=(serve(server, "placesCNN.tar.gz", archive),))
    nets.mkdir()
    key = "placesCNN/places205CNN_iter_300000.caffemodel"
    (nets / "manifest.json").write_text(json.dumps({key: sha256(b"old weights")}))
    with pytest.raises(catalogue.DownloadError, match=f"checksum mismatch for {key}"):
        dl.download_entries([entry], nets, timeout=5)
    assert not (nets / key).exists()
    assert not list(nets.rglob("*.tmp"))


# ----------------------------------------------------------------------------------------
# Offline, missing files, skipping
# ----------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_error_is_one_line_naming_the_destination(nets: Path) -> None:
    port = closed_port()
    entry = catalogue.Entry(
        dest="caffenet/bvlc_reference_caffenet.caffemodel",
        urls=(f"http://127.0.0.1:{port}/a.caffemodel", f"http://127.0.0.1:{port}/b.caffemodel"),
        sha1="0" * 40,
    )
    with pytest.raises(catalogue.DownloadError) as info:
        dl.download_entries([entry], nets, timeout=5)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(nets / "caffenet/bvlc_reference_caffenet.caffemodel") in msg
    assert f"127.0.0.1:{port}/a.caffemodel" in msg and f"127.0.0.1:{port}/b.caffemodel" in msg
    assert "internet" in msg
    assert not (nets / "caffenet/bvlc_reference_caffenet.caffemodel").exists()


def test_offline_archive_error_names_its_products(nets: Path) -> None:
    entry = dataclasses.replace(catalogue.GENERATORS, urls=(f"http://127.0.0.1:{closed_port()}/z.zip",))
    with pytest.raises(catalogue.DownloadError) as info:
        dl.download_entries([entry], nets, timeout=5)
    msg = str(info.value)
    assert "\n" not in msg
    for layer in ("fc6", "fc7", "pool5"):
        assert str(nets / f"generators/{layer}/generator.caffemodel") in msg


def test_http_404_is_reported(server: FileServer, nets: Path) -> None:
    entry = catalogue.Entry(dest="g/404.bin", urls=(server.url("absent.bin"),), sha256="0" * 64)
    with pytest.raises(catalogue.DownloadError, match="HTTP 404"):
        dl.download_entries([entry], nets, timeout=5)


def test_missing_and_describe_missing(tmp_path: Path) -> None:
    present = tmp_path / "nets/caffenet/bvlc_reference_caffenet.caffemodel"
    present.parent.mkdir(parents=True)
    present.write_bytes(b"w")
    absent = [tmp_path / "nets/generators/fc6/generator.caffemodel", tmp_path / "nets/googlenet/g.caffemodel"]
    assert models.missing([present, *absent]) == absent
    line = models.describe_missing(absent)
    assert "\n" not in line
    assert line.startswith("missing model files: ")
    for path in absent:
        assert str(path) in line
    assert "dgn-am download" in line


def test_describe_missing_shows_paths_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inside = [tmp_path / "nets/caffenet/x.caffemodel", Path("nets/generators/y.caffemodel")]
    line = models.describe_missing(inside)
    assert "nets/caffenet/x.caffemodel, nets/generators/y.caffemodel;" in line
    assert str(tmp_path) not in line


def test_present_verified_files_are_not_fetched_again(server: FileServer, nets: Path) -> None:
    data = payload(4000)
    plain = catalogue.Entry(dest="released/p.txt", urls=(serve(server, "p.txt", data),), sha256=sha256(data))
    archive = make_zip({f"r/{k}/generator.caffemodel": v for k, v in GEN.items()})
    gens = dataclasses.replace(catalogue.GENERATORS, urls=(serve(server, "g.zip", archive),))
    dl.download_entries([plain, gens], nets, timeout=5)
    assert server.count() == 2

    events = Events()
    dl.download_entries([plain, gens], nets, progress=events, timeout=5)
    assert server.count() == 2
    assert set(events.kinds()) == {"skip"}

    # Extracted files present and recorded: the archive itself is not needed again.
    (nets / "downloads/release_deepsim_v0.zip").unlink()
    dl.download_entries([gens], nets, timeout=5)
    assert server.count() == 2


def test_corrupt_present_file_is_replaced(server: FileServer, nets: Path) -> None:
    data = payload(4000)
    entry = catalogue.Entry(dest="released/c.txt", urls=(serve(server, "c.txt", data),), sha256=sha256(data))
    (nets / "released").mkdir(parents=True)
    (nets / "released/c.txt").write_bytes(b"corrupt")
    dl.download_entries([entry], nets, timeout=5)
    assert server.count("c.txt") == 1
    assert (nets / "released/c.txt").read_bytes() == data


def test_tampered_extracted_file_is_re_extracted(server: FileServer, nets: Path) -> None:
    archive = make_zip({f"r/{k}/generator.caffemodel": v for k, v in GEN.items()})
    gens = dataclasses.replace(catalogue.GENERATORS, urls=(serve(server, "g.zip", archive),))
    dl.download_entries([gens], nets, timeout=5)
    (nets / "generators/fc7/generator.caffemodel").write_bytes(b"truncated")
    dl.download_entries([gens], nets, timeout=5)
    assert server.count() == 1  # the kept zip was reused
    assert (nets / "generators/fc7/generator.caffemodel").read_bytes() == GEN["fc7"]


# ----------------------------------------------------------------------------------------
# The real catalogue
# ----------------------------------------------------------------------------------------

RELEASED_PATHS = {
    "act_range/1x/fc6.txt",
    "act_range/1x/pool5.txt",
    "act_range/2x/fc6.txt",
    "act_range/2x/pool5.txt",
    "act_range/3x/conv5.txt",
    "act_range/3x/fc6.txt",
    "act_range/3x/fc7.txt",
    "examples/example1.jpg",
    "examples/example2.jpg",
    "examples/example3.jpg",
    "examples/example4.jpg",
    "examples/example5.jpg",
    "images/red_pepper.jpg",
    "misc/categoryIndex_places205.txt",
    "misc/synset_words.txt",
}
COMMIT = "eb7f2e7c6a59476e6dd87eec6e66e847f8ad5a58"


def test_released_table_and_urls() -> None:
    assert len(catalogue.RELEASED_SHA256) == 15
    assert set(catalogue.RELEASED_SHA256) == RELEASED_PATHS
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in catalogue.RELEASED_SHA256.values())
    assert catalogue.RELEASED_SHA256["misc/synset_words.txt"].startswith("acf75ef0")
    assert catalogue.RELEASED_COMMIT == COMMIT
    released = catalogue.GROUPS["released"]
    assert len(released) == 15
    for entry in released:
        path = entry.dest.removeprefix("released/")
        assert entry.dest == f"released/{path}"
        assert entry.urls == (
            f"https://raw.githubusercontent.com/Evolving-AI-Lab/synthesizing/{COMMIT}/{path}",
        )
        assert entry.sha256 == catalogue.RELEASED_SHA256[path]


def test_catalogue_groups_and_model_entries(tmp_path: Path) -> None:
    assert set(catalogue.GROUPS) == {"caffenet", "googlenet", "generators", "places205", "released", "all"}
    (caffenet,) = catalogue.GROUPS["caffenet"]
    assert caffenet.urls == ("http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel",)
    assert caffenet.sha1 == "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    (googlenet,) = catalogue.GROUPS["googlenet"]
    assert googlenet.dest == "googlenet/bvlc_googlenet.caffemodel"
    assert googlenet.sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    (gens,) = catalogue.GROUPS["generators"]
    assert gens.urls[0].startswith("https://lmb.informatik.uni-freiburg.de/")
    assert gens.urls[1] == "http://s.anhnguyen.me/release_deepsim_v0.zip"
    assert gens.sha1 is None and gens.sha256 is None
    (places,) = catalogue.GROUPS["places205"]
    assert places.urls == ("http://places.csail.mit.edu/model/placesCNN.tar.gz",)
    all_dests = [e.dest for e in catalogue.GROUPS["all"]]
    assert len(all_dests) == len(set(all_dests)) == 4 + 15

    files = catalogue.group_files(["caffenet", "generators"], tmp_path)
    assert files == [
        tmp_path / "caffenet/bvlc_reference_caffenet.caffemodel",
        tmp_path / "generators/fc6/generator.caffemodel",
        tmp_path / "generators/fc7/generator.caffemodel",
        tmp_path / "generators/pool5/generator.caffemodel",
    ]
    assert catalogue.group_files(["places205"], tmp_path) == [
        tmp_path / "placesCNN/places205CNN_iter_300000.caffemodel"
    ]
    with pytest.raises(catalogue.DownloadError, match="unknown download group 'bogus'"):
        catalogue.entries_for(["bogus"])
