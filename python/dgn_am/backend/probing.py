"""Building a net once in a child process, so that a Caffe abort becomes one line instead of a dead process.

``python -m dgn_am.backend.probing --probe PROTOTXT`` is the child: it builds the net and prints its
description as JSON; ``--gpu-check N`` initializes a CUDA device the same way. A net Caffe built is
remembered across processes (``common.cache``) by the definition's bytes and the Caffe build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from ..common import cache as disk_cache
from ..common.errors import InputError
from ..common.files import hash_file
from .definitions import Definition, prepare_definition
from .netinfo import NetInfo
from .runtime import build_info, caffe, caffe_reason

#: How long building a net in the probe may take before it is called hung.
PROBE_TIMEOUT = 600


def probe(path: Path, backward: bool = False) -> NetInfo:
    """Build the net once in a child process and describe it; a Caffe abort there becomes one line."""
    return _probe(prepare_definition(path, backward))


def _probe(definition: Definition) -> NetInfo:
    st = definition.built.stat()
    info = _probe_built(str(definition.built.resolve()), st.st_size, st.st_mtime_ns)
    if isinstance(info, str):
        raise InputError(f"Caffe rejected net definition {definition.path}: {info}")
    return replace(info, path=definition.path, force_backward_added=definition.force_backward_added)


@cache
def _probe_built(built: str, size: int, mtime_ns: int) -> NetInfo | str:
    """The built net's description, or Caffe's reason for refusing it (remembered per file version).

    A net Caffe built is remembered across processes too, by the definition's bytes and the Caffe
    build: the same text always makes the same net there, and the probe child costs 0.7-1.3 s.
    """
    info = build_info()
    key = f"{hash_file(built)}|{info.get('caffe_commit')}|{info.get('key')}"
    d = disk_cache.get("probe", key)
    if not isinstance(d, dict):
        env = dict(os.environ, GLOG_minloglevel="2")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "dgn_am.backend.probing", "--probe", built],
                capture_output=True, text=True, env=env, check=False, timeout=PROBE_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return f"building it took over {PROBE_TIMEOUT} s"
        try:
            if proc.returncode != 0:
                raise ValueError
            d = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return caffe_reason(proc.stderr)
        disk_cache.put("probe", key, d)
    return NetInfo(
        path=Path(built),
        blobs={k: tuple(v) for k, v in d["blobs"].items()},
        params={k: [tuple(s) for s in v] for k, v in d["params"].items()},
        layers=[tuple(x) for x in d["layers"]],
        inputs=d["inputs"],
        tops={k: list(v) for k, v in d["tops"].items()},
        bottoms={k: list(v) for k, v in d["bottoms"].items()},
    )


def _describe_built(path: str) -> dict[str, Any]:
    c = caffe()
    net = c.Net(path, c.TEST)
    return {
        "blobs": {k: list(v.data.shape) for k, v in net.blobs.items()},
        "params": {k: [list(p.data.shape) for p in v] for k, v in net.params.items()},
        "layers": [[name, layer.type] for name, layer in net.layer_dict.items()],
        "inputs": list(net.inputs),
        "tops": {name: list(tops) for name, tops in net.top_names.items()},
        "bottoms": {name: list(bottoms) for name, bottoms in net.bottom_names.items()},
    }


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"] and len(argv) == 2:
        print(json.dumps(_describe_built(argv[1])))
        return 0
    if argv[:1] == ["--gpu-check"] and len(argv) == 2:
        c = caffe()
        c.set_device(int(argv[1]))
        c.set_mode_gpu()
        c.Net  # noqa: B018 - touching the module after set_mode_gpu initializes the device
        print(f"device {argv[1]}")
        return 0
    print("usage: python -m dgn_am.backend.probing --probe PROTOTXT | --gpu-check N", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
