"""Which model files a run uses, their defaults, and the one rule for files that are not there yet.

The defaults are the released setting: CaffeNet as the target and as the encoder of start images,
and the released DeePSiM generator of the code layer. A file that is absent is "missing" and comes
with the fix (``dgn-am download``); anything else in its place is refused by name when it is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..common import paths
from ..common.errors import InputError
from ..common.paths import shown


@dataclass(frozen=True)
class Models:
    """The nets of a session: the target, the generator and (for start images) the encoder."""

    net_definition: Path
    net_weights: Path
    generator_definition: Path
    generator_weights: Path
    encoder_definition: Path
    encoder_weights: Path
    gpu: int | None = None

    def files(self, with_encoder: bool = True) -> list[Path]:
        out = [self.net_definition, self.net_weights, self.generator_definition, self.generator_weights]
        return out + ([self.encoder_definition, self.encoder_weights] if with_encoder else [])


#: The model files of a run, as ``Models`` fields and as the flags that name them.
MODEL_ROLES = ("net_definition", "net_weights", "generator_definition", "generator_weights", "encoder_definition",
               "encoder_weights")


def default_models(opt_layer: str = "fc6", gpu: int | None = None, *, net_definition: Path | None = None,
                   net_weights: Path | None = None, generator_definition: Path | None = None,
                   generator_weights: Path | None = None, encoder_definition: Path | None = None,
                   encoder_weights: Path | None = None) -> Models:
    """The released models for ``opt_layer``, each replaced by the path given for it (None: the default)."""
    return Models(
        net_definition=Path(net_definition or paths.caffenet_definition()),
        net_weights=Path(net_weights or paths.caffenet_weights()),
        generator_definition=Path(generator_definition or paths.generator_definition(opt_layer)),
        generator_weights=Path(generator_weights or paths.generator_weights(opt_layer)),
        encoder_definition=Path(encoder_definition or paths.caffenet_definition()),
        encoder_weights=Path(encoder_weights or paths.caffenet_weights()),
        gpu=gpu,
    )


def net_models(net: str, gpu: int | None = None, opt_layer: str = "fc6", **given: Path | None) -> Models:
    """A catalogued target net (``catalogue.NETS``: caffenet, places205, googlenet) with the released generator;
    ``given`` paths replace any default, as in ``default_models``."""
    from .catalogue import NETS

    definition, weights, _ = NETS[net]
    given = {k: v for k, v in given.items() if v is not None}
    given.setdefault("net_definition", paths.PROTOTXT / definition)
    given.setdefault("net_weights", paths.nets_dir() / weights)
    return default_models(opt_layer, gpu, **given)


def downloadable(models: Models, init_file: Path | None = None, bound: Path | None = None) -> list[Path]:
    """The files a run needs that ``dgn-am download`` provides: weights, and a released bound file.

    The encoder's weights only with a start image; a start image or bound file only when it lies under
    nets/ (the released images and act_range files): elsewhere it is the user's, refused by name if absent.
    """
    needed = [models.net_weights, models.generator_weights] + ([models.encoder_weights] if init_file else [])
    return needed + [Path(f) for f in (init_file, bound) if f is not None and paths.is_under_nets(f)]


def missing(paths: Iterable[Path | str]) -> list[Path]:
    """The given paths that are absent (nothing there, not even a link): what 'dgn-am download' would fetch.

    Anything else in a file's place (a dangling link, a loop, a FIFO, a folder) is not "missing": the
    reader refuses it by name, which says more than "run dgn-am download".
    """
    return [Path(p) for p in dict.fromkeys(paths) if not os.path.lexists(p)]


DOWNLOAD_FIX = "run 'dgn-am download' (needs internet) or place them there"


def describe_missing(paths: Iterable[Path | str], what: str = "model files", fix: str = DOWNLOAD_FIX) -> str:
    """One line naming the missing files and how to get them (for commands that need them)."""
    return f"missing {what}: {', '.join(shown(p) for p in paths)}; {fix}"


def require(paths_: Iterable[Path | str], what: str = "model files", prefix: str = "", fix: str = DOWNLOAD_FIX) -> None:
    """Raise the one-line "missing ..." InputError when any of ``paths_`` is absent (``prefix`` names the job)."""
    absent = missing(paths_)
    if absent:
        raise InputError(prefix + describe_missing(absent, what, fix))
