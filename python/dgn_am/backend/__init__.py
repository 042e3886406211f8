"""The boundary with Caffe: the only package that touches pycaffe (``runtime`` imports it).

Caffe aborts the whole process on a failed CHECK, and its weight loading ignores layers it cannot
match. So nothing a user gives reaches Caffe unchecked: a net definition is parsed first
(``definitions``), then built once in a child process (``probe``), whose death is turned into one
line; a caffemodel is parsed (``weights``) and compared against the probed net
(``netinfo.check_weights``) before ``caffe.Net`` sees it (``nets``). ``netinfo`` and its checks are
plain data and run without pycaffe; ``netspecs`` writes the real architectures; ``summary`` is
``dgn-am layers``.

Importing this package does not import pycaffe: ``caffe()`` does, at the first call that needs it.
"""

from .definitions import Definition, parse_definition, prepare_definition, spatial_layers
from .nets import (
    CaffeGenerator,
    CaffeTarget,
    check_model,
    encode,
    encode_many,
    feed,
    imagenet_mean,
    load_net,
    set_weight_gradients,
)
from .probing import PROBE_TIMEOUT, probe
from .runtime import (
    BATCHED_CONVOLUTION_ENV,
    FAST_MATH_ENV,
    batched_convolution,
    build_info,
    caffe,
    dnnl_built,
    fast_math,
    proto,
    set_mode,
)
from .weights import parse_weights, read_weights, save_random_weights

__all__ = [
    "BATCHED_CONVOLUTION_ENV", "FAST_MATH_ENV", "PROBE_TIMEOUT", "CaffeGenerator", "CaffeTarget", "Definition",
    "batched_convolution", "build_info", "caffe", "check_model", "dnnl_built", "encode", "encode_many", "fast_math",
    "feed", "imagenet_mean", "load_net", "parse_definition", "parse_weights", "prepare_definition", "probe", "proto",
    "read_weights", "save_random_weights", "set_mode", "set_weight_gradients", "spatial_layers",
]
