"""The catalogue of the pretrained models and released data DGN-AM needs: where each comes from and how to check it.

Kept apart from the downloader (``fetch``) as a net catalogue is kept apart from its loader: the rest of
the project asks here what a group provides and where each target net's files are, without HTTP.
``GROUPS`` names selections of the catalogue: ``caffenet``, ``googlenet``, ``generators``,
``places205``, ``released`` and ``all``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import InputError

DOWNLOADS_DIR = "downloads"


class DownloadError(InputError):
    """A download or check failed; the message is one line meant for the user."""


@dataclass(frozen=True)
class Member:
    """A file to take out of an archive: the member whose path ends with ``suffix``."""

    suffix: str  # e.g. "fc6/generator.caffemodel"; matched at a path-component boundary
    dest: str  # where it goes, relative to the nets folder (POSIX separators)


@dataclass(frozen=True)
class Entry:
    """One downloadable file: tried URLs in order, its destination and how to check it.

    An entry with ``members`` is an archive (``.zip`` or ``.tar.gz``) kept under
    ``downloads/``; its products are the extracted members, not the archive itself.
    """

    dest: str  # relative to the nets folder (POSIX separators)
    urls: tuple[str, ...]
    sha1: str | None = None
    sha256: str | None = None
    members: tuple[Member, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """The files this entry provides to the rest of the project."""
        return tuple(m.dest for m in self.members) if self.members else (self.dest,)


CAFFE_BASE = "http://dl.caffe.berkeleyvision.org/"
DEEPSIM_PRIMARY = (
    "https://lmb.informatik.uni-freiburg.de/resources/binaries/"
    "arxiv2016_alexnet_inversion_with_gans/release_deepsim_v0.zip"
)
DEEPSIM_MIRROR = "http://s.anhnguyen.me/release_deepsim_v0.zip"
DEEPSIM_URLS = (DEEPSIM_PRIMARY, DEEPSIM_MIRROR)  # tried in this order
PLACES_URL = "http://places.csail.mit.edu/model/placesCNN.tar.gz"
RELEASED_REPO = "Evolving-AI-Lab/synthesizing"
RELEASED_COMMIT = "eb7f2e7c6a59476e6dd87eec6e66e847f8ad5a58"
RELEASED_BASE = f"https://raw.githubusercontent.com/{RELEASED_REPO}/{RELEASED_COMMIT}/"

# sha256 of the files the original code released at RELEASED_COMMIT (path in that repo).
RELEASED_SHA256: dict[str, str] = {
    "act_range/1x/fc6.txt": "39040cecb2292fbe544547e001b98e953f9d7a246ed241b01e77ed852315ac3b",
    "act_range/1x/pool5.txt": "231de678317132a459a1a14f2e58071f6d02731ce40252b5609ad63fe1d36808",
    "act_range/2x/fc6.txt": "2d69ff42fd36b74b710c8263e18605b405fb1c3fe0e267ef2a65436dc344857a",
    "act_range/2x/pool5.txt": "36d49686fc1ca67974c304b84ac0f1018ed0b4670c00477275c38186e5493c85",
    "act_range/3x/conv5.txt": "fb9cb107e64e85389ed8526927386db64193f9a683a1fcc93c4d9e692086515c",
    "act_range/3x/fc6.txt": "615c088ea5beff9c1cd67fe643d8daa5ea7370cb93a70656951b88194a7c65cc",
    "act_range/3x/fc7.txt": "bae31fe48c26733a09fb61424d499cdcddcf9dc02637523605452e98ce971b41",
    "examples/example1.jpg": "c8eb3e6e516572410249ebb219ce674d47d9bfc157ad1318e345aabd84755179",
    "examples/example2.jpg": "ab0cf5d8ae0bb9ab2f9b20e291b882d7c10eae0d18fb2c59cf7e9d2c62e38151",
    "examples/example3.jpg": "95a9fb159cdcff1bf89d001da21a2fa36eb8307f27f45794050550766a45dfbd",
    "examples/example4.jpg": "3de8e698194df898cbc7a01e2355d7a9c78e985fa8b32a753efa135c78ffdb42",
    "examples/example5.jpg": "fe48a62122c88669d9c3bc145c9bad1efaab4a1762e5f4fb2606282b3dfa2df0",
    "images/red_pepper.jpg": "7e2c8cf115cb23fff9f02471cf4ce15361417382f48d056ad064371f84e1fa0d",
    "misc/categoryIndex_places205.txt": "8271d045edeb578fc1d824968e16cc98ada32cbc960dd8a9b2f9b835b7625d18",
    "misc/synset_words.txt": "acf75ef0abe89694b19056e0796401068b459c457baa30335f240c7692857355",
}

CAFFENET = Entry(
    dest="caffenet/bvlc_reference_caffenet.caffemodel",
    urls=(CAFFE_BASE + "bvlc_reference_caffenet.caffemodel",),
    sha1="4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
)
GOOGLENET = Entry(
    dest="googlenet/bvlc_googlenet.caffemodel",
    urls=(CAFFE_BASE + "bvlc_googlenet.caffemodel",),
    sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
)
GENERATORS = Entry(
    dest=f"{DOWNLOADS_DIR}/release_deepsim_v0.zip",
    urls=DEEPSIM_URLS,
    members=tuple(
        Member(f"{layer}/generator.caffemodel", f"generators/{layer}/generator.caffemodel")
        for layer in ("fc6", "fc7", "pool5")
    ),
)
PLACES205 = Entry(
    dest=f"{DOWNLOADS_DIR}/placesCNN.tar.gz",
    urls=(PLACES_URL,),
    members=(Member("places205CNN_iter_300000.caffemodel", "placesCNN/places205CNN_iter_300000.caffemodel"),),
)
RELEASED = tuple(
    Entry(dest=f"released/{path}", urls=(RELEASED_BASE + path,), sha256=digest)
    for path, digest in RELEASED_SHA256.items()
)

GROUPS: dict[str, tuple[Entry, ...]] = {
    "caffenet": (CAFFENET,),
    "googlenet": (GOOGLENET,),
    "generators": (GENERATORS,),
    "places205": (PLACES205,),
    "released": RELEASED,
}
GROUPS["all"] = tuple(e for name in list(GROUPS) for e in GROUPS[name])


def entries_for(groups: Iterable[str]) -> list[Entry]:
    """The catalogue entries of the named groups, in order, each once."""
    seen: dict[str, Entry] = {}
    for group in groups:
        if group not in GROUPS:
            raise DownloadError(f"unknown download group '{group}'; choose from {', '.join(GROUPS)}")
        for entry in GROUPS[group]:
            seen.setdefault(entry.dest, entry)
    return list(seen.values())


def group_files(groups: Iterable[str], nets_dir: Path) -> list[Path]:
    """The final files the named groups provide (what the rest of the project loads)."""
    return [Path(nets_dir) / out for e in entries_for(groups) for out in e.outputs]


#: Where each target net's files are: prototxt in the checkout, weights and label list under nets/.
NETS = {
    "caffenet": ("caffenet.prototxt", "caffenet/bvlc_reference_caffenet.caffemodel", "misc/synset_words.txt"),
    "places205": ("places205_alexnet.prototxt", "placesCNN/places205CNN_iter_300000.caffemodel",
                  "misc/categoryIndex_places205.txt"),
    "googlenet": ("googlenet.prototxt", "googlenet/bvlc_googlenet.caffemodel", "misc/synset_words.txt"),
}
