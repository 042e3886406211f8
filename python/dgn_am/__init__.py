"""dgn-am: DGN-AM (Nguyen et al., NIPS 2016), activation maximization through a deep generator network.

The package in layers, each importing only those before it:

- ``common``: errors, paths, files (hashing, atomic writes), the disk cache, locks, the version.
- ``core``: the method in NumPy: the loop (``algorithm``), objectives, codes, bound statistics, pixels.
- ``backend``: the only code that touches pycaffe: prototxt checks, the probe, caffemodels, net adapters.
- ``assets``: which model files exist and how they arrive: the catalogue, the downloader, labels.
- ``results``: what runs write and read back: images, outputs, manifests, montages, galleries, comparisons.
- ``runs``: orchestration: a run, a session, sweeps and their grids, workers, releases, act-range.
- ``mini``: the miniature model: its data, nets, losses, training and the demo.
- ``cli``: the ``dgn-am`` command, one module per subcommand.

``api`` is the Python API, re-exported here: ``DGNAM.mini().synthesize([0, 1])``.
"""

from .api import DGNAM, Preset, presets
from .assets.labels import read_labels
from .assets.models import Models, default_models
from .common.errors import InputError
from .common.version import __version__
from .runs.run import Run
from .runs.session import Outcome, RunFailed, Session, Synthesis, synthesize

__all__ = [
    "DGNAM", "InputError", "Models", "Outcome", "Preset", "Run", "RunFailed", "Session", "Synthesis",
    "__version__", "default_models", "presets", "read_labels", "synthesize",
]
