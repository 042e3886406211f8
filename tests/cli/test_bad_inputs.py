"""The corpus of bad inputs (issue 9): every subcommand, every class of bad input, one clean refusal each.

A clean refusal is: exit code 2, exactly one line on stderr that says ``error:`` and what is wrong, no
traceback, no Caffe abort, no hang, and not one file written or changed anywhere under the case's folder.

The cases run in one child process (``python -m tests.cli.test_bad_inputs``), each through the command's
``main`` with its output captured and a 60 s alarm (``$DGN_AM_CORPUS_TIMEOUT``), so that three hundred of
them take seconds rather than the half hour of a process each; a Caffe abort would kill that child, and
the case it was running is then named. Every case is its own pytest test, so a failure names the input. The nets are the
committed miniature model (copied into the case folder), so every load is quick.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ..conftest import png_claiming

ROOT = Path(__file__).resolve().parents[2]
MINI_PROTO, MINI_NETS = ROOT / "prototxt" / "mini", ROOT / "nets" / "mini"
STEM = "fc8_0003_02_0.97_1.0__0"


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # "{r}" is the corpus folder
    words: tuple[str, ...] = ()  # each must be in the error line
    tool: str = "dgn-am"  # or "train": python -m dgn_am.mini.train
    env: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


# --- the cases --------------------------------------------------------------------------------------------

SYN = {"--net_definition": "{r}/enc.prototxt", "--net_weights": "{r}/enc.caffemodel",
       "--generator_definition": "{r}/gen.prototxt", "--generator_weights": "{r}/gen.caffemodel",
       "--bound": "{r}/bounds.txt", "--unit": "3", "--n_iters": "2", "--L2": "0.97", "--start_lr": "1",
       "--end_lr": "1e-10", "--output_dir": "{r}/out"}


def syn(name: str, *words: str, drop: tuple[str, ...] = (), **flags: str) -> Case:
    """A ``dgn-am synthesize`` case on the miniature model: SYN with ``flags`` (``--a_b`` as ``a_b``) over it."""
    args = dict(SYN)
    for key, value in flags.items():
        args["--" + key] = value
    argv = ["synthesize"] + [x for k, v in args.items() if k not in drop for x in (k, v)] + ["--quiet"]
    return Case(f"synthesize-{name}", tuple(argv), words)


def sweep(name: str, *words: str, **flags: str) -> Case:
    args = {"--net_definition": "{r}/enc.prototxt", "--net_weights": "{r}/enc.caffemodel",
            "--generator_definition": "{r}/gen.prototxt", "--generator_weights": "{r}/gen.caffemodel",
            "--bound": "{r}/bounds.txt", "--units": "0-1", "--n_iters": "2", "--output_dir": "{r}/sweep"}
    for key, value in flags.items():
        args["--" + key] = value
    argv = ["sweep"] + [x for k, v in args.items() if v is not None for x in (k, v)] + ["--quiet"]
    return Case(f"sweep-{name}", tuple(argv), words)


def compare(name: str, *words: str, result: str = "{r}/montage.png", reference: str = "{r}/reference.png",
            extra: tuple[str, ...] = ()) -> Case:
    return Case(f"compare-{name}", ("compare", result, reference, "--json", "{r}/report.json", *extra), words)


def act_range(name: str, *words: str, **flags: str) -> Case:
    args = {"--net_definition": "{r}/enc.prototxt", "--net_weights": "{r}/enc.caffemodel", "--images": "{r}/images",
            "--output": "{r}/ranges/fc6.txt", "--mean": "128", "--layer": "fc6"}
    for key, value in flags.items():
        args["--" + key] = value
    return Case(f"act-range-{name}", ("act-range", *[x for k, v in args.items() for x in (k, v)]), words)


def demo(name: str, *words: str, extra: tuple[str, ...] = ()) -> Case:
    return Case(f"demo-{name}", ("demo", "--quiet", "--output_dir", "{r}/demo", *extra), words)


#: Files that are no good where a file of any kind belongs, and the words their refusal says.
ODD = {"missing": ("does not exist",), "fifo": ("not a regular file",), "folder": ("folder",),
       "loop": ("symlink loop",), "dangling": ("does not exist",), "devzero": ("not a regular file",),
       "devnull": ("not a regular file",), "empty": (), "garbage": (), "latin1": (), "huge": ("bytes",)}
ODD_PATHS = {"missing": "{r}/odd/missing", "fifo": "{r}/odd/fifo", "folder": "{r}/odd/folder",
             "loop": "{r}/odd/loop", "dangling": "{r}/odd/dangling", "devzero": "/dev/zero", "devnull": "/dev/null",
             "empty": "{r}/odd/empty", "garbage": "{r}/odd/garbage", "latin1": "{r}/odd/latin1",
             "huge": "{r}/odd/huge"}

#: Prototxt edits of the miniature encoder: (name, words); the files are made by ``_bad_prototxts``.
BAD_NETS = [
    ("dummy-input", ("'data'", "not a net input")), ("duplicate-names", ("two layers named",)),
    ("unknown-type", ("unknown type",)), ("cudnn", ("CUDNN",)), ("syntax", ("not a valid prototxt",)),
    ("v1-layers", ("'layers' format",)), ("kernel-too-big", ("Caffe rejected",)),
    ("two-sources", ("produced by multiple sources",)), ("no-bottom", ("Unknown bottom blob",)),
    ("argmax-path", ("no backward pass",), {"act_layer": "fc8x", "unit": "0"}),
    ("not-from-data", ("does not depend on the input",), {"act_layer": "const", "unit": "0"}),
]
BAD_GENERATORS = [
    ("dummy-feat", ("'feat'", "not a net input")), ("no-output", ("generator output 'deconv0'",)),
    ("no-code", ("generator input 'feat'",)),
    ("syntax", ("not a valid prototxt",)), ("duplicate-names", ("two layers named",)),
]
#: Caffemodel damage: (name, words); made by ``_bad_caffemodels`` from the miniature encoder's weights.
BAD_WEIGHTS = [
    ("nan", ("NaN or Inf",)), ("inf", ("NaN or Inf",)), ("junk", ()), ("truncated", ()),
    ("other-net", ("matches no layer",)), ("wrong-shape", ("expects",)), ("missing-layer", ("no weights for layer",)),
    ("duplicate-first-wrong", ("expects",)), ("legacy-contradicts", ()), ("mixed-formats", ("layer",)),
    ("double-data-count", ("values",)), ("blobs-into-relu", ("relu",)), ("hdf5", ("HDF5",)),
    ("blobless-entry", ("blob",)),
]


def _cases() -> list[Case]:
    c: list[Case] = []
    # numbers and flags of synthesize
    for flag, values in {
        "unit": [("-1", ">= 0"), ("1000000", "out of range"), ("abc", "invalid int"), ("1.5", "invalid int"),
                 ("", "invalid int")],
        "n_iters": [("0", "between 1"), ("-5", "between 1"), ("1000000000000", "100,000"), ("abc", "invalid int"),
                    ("1e3", "invalid int")],
        "L2": [("1.5", "(0, 1]"), ("0", "(0, 1]"), ("-0.1", "(0, 1]"), ("nan", "finite"), ("inf", "finite"),
               ("abc", "invalid float")],
        "start_lr": [("-1", "> 0"), ("0", "> 0"), ("nan", "finite"), ("inf", "finite"),
                     ("-inf", "expected one argument"),
                     ("abc", "invalid float")],
        "end_lr": [("-1", ">= 0"), ("-1e-10", "expected one argument"), ("nan", "finite"), ("inf", "finite"),
                   ("x", "invalid float")],
        "seed": [("-1", "2**32"), ("4294967296", "2**32"), ("abc", "invalid int"), ("99999999999999999999", "2**32")],
        "xy": [("-1", ">= 0")], "x": [("-1", ">= 0")], "y": [("-1", ">= 0")],
        "gamma": [("0.5", "--gamma needs --unit2")],
        "opt_layer": [("fc9", "invalid choice"), ("pool6", "invalid choice")],
        "debug": [("2", "invalid choice")], "clip": [("2", "invalid choice"), ("x", "invalid int")],
        "act_layer": [("fc9", "not a blob"), ("", "not a blob"), ("conv1/x", "not a blob")],
        "gpu": [("0", "CPU-only"), ("x", "invalid int")],
    }.items():
        for value, word in values:
            c.append(syn(f"{flag}={value or 'empty'}", word, **{flag: value}))
    c += [
        syn("unit2=-1", ">= 0", unit2="-1"), syn("unit2=1000", "out of range", unit2="1000"),
        syn("gamma=-1", ">= 0", unit2="4", gamma="-1"), syn("gamma=nan", "finite", unit2="4", gamma="nan"),
        syn("conv-channel", "out of range", act_layer="conv1", unit="999"),
        syn("conv-x", "outside", act_layer="conv1", x="1000"), syn("conv-y", "outside", act_layer="conv1", y="1000"),
        syn("conv-xy", "outside", act_layer="conv1", xy="64"),
        syn("init-wrong-opt-layer", "--opt_layer", init_file="{r}/good.png", opt_layer="pool5",
            encoder_definition="{r}/enc.prototxt", encoder_weights="{r}/enc.caffemodel"),
    ]
    # every file flag of synthesize, given each odd file
    for flag in ("net_definition", "net_weights", "generator_definition", "generator_weights", "bound",
                 "init_file", "encoder_weights"):
        for kind, words in ODD.items():
            extra = {"encoder_definition": "{r}/enc.prototxt", "encoder_weights": "{r}/enc.caffemodel",
                     "init_file": "{r}/good.png"} if flag in ("init_file", "encoder_weights") else {}
            extra[flag] = ODD_PATHS[kind]
            absent = flag.endswith("weights") and kind == "missing"  # what `dgn-am download` would fetch
            c.append(syn(f"{flag}-{kind}", *(("missing model files",) if absent else words), **extra))
    c += [syn(f"image-{k}", w, init_file=f"{{r}}/img/{k}", encoder_definition="{r}/enc.prototxt",
              encoder_weights="{r}/enc.caffemodel")
          for k, w in (("bomb.png", "decompression bomb"), ("big.png", "more than the"), ("cut.png", "not a readable"),
                       ("text.jpg", "not a readable"))]
    c += [syn(f"bound-{k}", w, bound=f"{{r}}/bad_bounds/{k}")
          for k, w in (("short", "values"), ("word", "non-number"), ("negative", "negative"), ("nan", "non-finite"),
                       ("inf", "non-finite"), ("long", "values"))]
    c += [syn(f"net-{name}", *words, net_definition=f"{{r}}/nets/{name}.prototxt", **(more[0] if more else {}))
          for name, words, *more in BAD_NETS]
    c += [syn(f"generator-{name}", *words, generator_definition=f"{{r}}/gens/{name}.prototxt")
          for name, words in BAD_GENERATORS]
    c += [syn(f"weights-{name}", *words, net_weights=f"{{r}}/weights/{name}.caffemodel") for name, words in BAD_WEIGHTS]
    c += [syn(f"generator-weights-{name}", *words, generator_weights=f"{{r}}/gweights/{name}.caffemodel")
          for name, words in (("nan", ("NaN or Inf",)), ("inf", ("NaN or Inf",)), ("junk", ()),
                              ("other-net", ("matches no layer",)))]
    # where the results go
    c += [
        syn("output-is-a-file", "is a file", output_dir="{r}/odd/garbage"),
        syn("output-under-a-file", "not writable", output_dir="{r}/odd/garbage/sub"),
        syn("output-loop", "symlink", output_dir="{r}/odd/loop"),
        syn("output-devnull", "is a file", output_dir="/dev/null"),
        syn("output-too-long", "too long", output_dir="{r}/" + "d" * 300),
        syn("long-layer-name", "too long", net_definition="{r}/nets/long-name.prototxt", act_layer="fc8_" + "x" * 250),
    ]
    for ext in ("jpg", "png", "npz", "json"):
        c.append(syn(f"{ext}-is-a-folder", "in the way", output_dir=f"{{r}}/taken_{ext}"))
    c += [
        syn("debug-is-a-file", "not a folder of frames", output_dir="{r}/taken_debug", debug="1"),
        syn("debug-holds-user-files", "did not write", output_dir="{r}/user_debug", debug="1"),
        syn("json-is-a-symlink", "symlink", output_dir="{r}/linked"),
        syn("another-run-same-name", "records a different run", output_dir="{r}/other_run"),
        syn("manifest-unreadable", "records a different run", output_dir="{r}/junk_manifest"),
        syn("output-is-the-bound-file", "also an input", output_dir="{r}/self_input",
            bound=f"{{r}}/self_input/{STEM}.png"),
    ]
    # sweep
    c += [
        sweep("units-backwards", "backwards", units="9-3"), sweep("units-word", "not a whole number", units="a"),
        sweep("units-empty-item", "empty item", units="1,,2"), sweep("units-negative", "'-1'", units="-1"),
        sweep("units-huge-range", "more than a sweep's", units="0-99999999"),
        sweep("units-empty", "empty item", units=""), sweep("units-none", "no units", units=None),
        sweep("units-out-of-range", "out of range", units="8-12"),
        sweep("seeds-too-big", "2**32", seeds="4294967296"), sweep("seeds-word", "not a whole number", seeds="x"),
        sweep("n_iters-0", "between 1", n_iters="0"), sweep("n_iters-huge", "100,000", n_iters="1000000000000"),
        sweep("n_iters-float", "not a whole number", n_iters="1.5"),
        sweep("L2-above-1", "(0, 1]", L2="1.5"), sweep("L2-0", "(0, 1]", L2="0"), sweep("L2-nan", "finite", L2="nan"),
        sweep("L2-list", "(0, 1]", L2="0.5,2"), sweep("start_lr-negative", "> 0", start_lr="-8"),
        sweep("start_lr-0", "> 0", start_lr="0"), sweep("start_lr-inf", "finite", start_lr="inf"),
        sweep("end_lr-negative", ">= 0", end_lr="-1"), sweep("end_lr-nan", "finite", end_lr="nan"),
        sweep("grid-too-large", "more than the 100,000", units="0-999", seeds="0-999", n_iters="1,2,3"),
        sweep("xy-negative", ">= 0", xy="-1"), sweep("opt_layer", "invalid choice", opt_layer="fc9"),
        sweep("clip", "invalid choice", clip="2"), sweep("act_layer", "not a blob", act_layer="fc9"),
        sweep("output-is-a-file", "is a file", output_dir="{r}/odd/garbage"),
        sweep("another-run-same-name", "records a different run", output_dir="{r}/sweep_other", units="3"),
        sweep("bound-fifo", "not a regular file", bound="{r}/odd/fifo"),
        sweep("net-weights-junk", "", net_weights="{r}/weights/junk.caffemodel"),
        sweep("net-nan", "NaN or Inf", net_weights="{r}/weights/nan.caffemodel"),
        sweep("init-bomb", "decompression bomb", init_file="{r}/img/bomb.png", encoder_definition="{r}/enc.prototxt",
              encoder_weights="{r}/enc.caffemodel"),
        Case("sweep-gallery-only-missing", ("sweep", "--gallery-only", "--output_dir", "{r}/nowhere"),
             ("not a folder",)),
    ]
    for shard in ("3/3", "a/b", "2", "-1/3", "1/0", "5/3", "", "1/2/3"):
        c.append(sweep(f"shard={shard or 'empty'}", "--shard", shard=shard))
    for name, words in (("missing", ("does not exist",)), ("fifo", ("not a regular file",)), ("folder", ("folder",)),
                        ("invalid", ("not valid TOML",)), ("unknown-key", ("unknown key", "did you mean")),
                        ("units-float", ("1.5",)), ("bound-number", ("must be a path",)), ("opt_layer", ("fc9",)),
                        ("clip", ("0 or 1",)), ("latin1", ("not UTF-8",)), ("L2-word", ("not a number",)),
                        ("end_lr-negative", (">= 0",)), ("n_iters-huge", ("100,000",)), ("grid", ("more than the",))):
        c.append(Case(f"sweep-config-{name}", ("sweep", "--config", f"{{r}}/configs/{name}.toml", "--output_dir",
                                                "{r}/sweep", "--quiet"), words))
    # compare
    for flag, values in (("--ssim_min", ("nan", "inf", "2", "-2")), ("--psnr_min", ("nan", "-1", "inf")),
                         ("--trajectory_max_rel", ("nan", "-0.1", "inf"))):
        for v in values:
            c.append(compare(f"{flag[2:]}={v}", flag, extra=(flag, v)))
    c.append(compare("psnr_min=word", "invalid float", extra=("--psnr_min", "abc")))
    for kind, words in ODD.items():
        if kind in ("empty", "garbage", "latin1"):
            words = ("not a readable image",)
        c.append(compare(f"result-{kind}", *words, result=ODD_PATHS[kind]))
    for kind in ("missing", "fifo", "garbage", "devzero"):
        c.append(compare(f"reference-{kind}", reference=ODD_PATHS[kind]))
    c += [compare(f"result-{k}", w, result=f"{{r}}/img/{k}")
          for k, w in (("bomb.png", "decompression bomb"), ("big.png", "more than the"), ("cut.png", "not a readable"),
                       ("text.jpg", "not a readable"))]
    c += [
        compare("json-is-the-result", "also an input", extra=("--json", "{r}/montage.png")),
        compare("json-is-the-reference", "also an input", extra=("--json", "{r}/reference.png")),
        compare("json-is-a-symlink", "symlink", extra=("--json", "{r}/odd/link_to_garbage")),
        compare("json-is-a-folder", "in the way", extra=("--json", "{r}/odd/folder")),
        compare("json-in-no-folder", "folder does not exist", extra=("--json", "{r}/nowhere/r.json")),
        compare("json-is-the-record", "also an input", result="{r}/records/good.png",
                extra=("--json", "{r}/records/good.json")),
        compare("unknown-example", "unknown example", extra=("--example", "example9")),
        compare("wrong-layout", "released example4 layout", extra=("--example", "example4")),
        compare("size-mismatch", "same layout", result="{r}/small.png"),
    ]
    for name, words in (("invalid", ("not valid JSON",)), ("list", ("not a JSON object",)),
                        ("release-number", ("'release'",)), ("release-unknown", ("example9",)),
                        ("trajectory-words", ("'trajectory'",)), ("trajectory-nan", ("'trajectory'",)),
                        ("n_iters-negative", ("'n_iters'",))):
        c.append(compare(f"record-{name}", *words, result=f"{{r}}/records/{name}.png"))
    # act-range
    for value, word in (("0", "(0, 100]"), ("-1", "(0, 100]"), ("nan", "(0, 100]"), ("inf", "(0, 100]"),
                        ("1e308", "(0, 100]"), ("101", "(0, 100]"), ("x", "invalid float")):
        c.append(act_range(f"k={value}", word, k=value))
    for value, word in (("-1", "between 0 and 10"), ("11", "between 0 and 10"), ("1000000000", "between 0 and 10")):
        c.append(act_range(f"decimals={value}", word, decimals=value))
    for value in ("abc", "nan", "inf"):
        c.append(act_range(f"mean={value}", "--mean", mean=value))
    for name, words in (("missing", ("does not exist",)), ("a-file", ("not a folder",)),
                        ("empty", ("holds no images",)),
                        ("fifo-entry", ("not a regular file",)), ("loop-entry", ("symlink loop",)),
                        ("folder-entry", ("folder",)), ("bomb-entry", ("decompression bomb",)),
                        ("garbage-entry", ("not a readable image",))):
        c.append(act_range(f"images-{name}", *words, images=f"{{r}}/image_sets/{name}"))
    c += [
        act_range("output-is-a-folder", "in the way", output="{r}/odd/folder"),
        act_range("output-is-a-symlink", "symlink", output="{r}/odd/link_to_garbage"),
        act_range("output-is-an-image", "also an input", output="{r}/images/a.png"),
        act_range("output-under-a-file", "is a file", output="{r}/odd/garbage/fc6.txt"),
        act_range("output-too-long", "too long", output="{r}/ranges/" + "b" * 300),
        act_range("layer", "no blob 'fc9'", layer="fc9"),
        act_range("net-fifo", "not a regular file", net_definition="{r}/odd/fifo"),
        act_range("net-syntax", "not a valid prototxt", net_definition="{r}/nets/syntax.prototxt"),
        act_range("net-dummy-input", "not a net input", net_definition="{r}/nets/dummy-input.prototxt"),
        act_range("weights-junk", net_weights="{r}/weights/junk.caffemodel"),
        act_range("weights-nan", "NaN or Inf", net_weights="{r}/weights/nan.caffemodel"),
        act_range("weights-devzero", "not a regular file", net_weights="/dev/zero"),
    ]
    # demo
    c += [
        demo("n_iters=0", "between 1", extra=("--n_iters", "0")),
        demo("n_iters=-1", "between 1", extra=("--n_iters", "-1")),
        demo("n_iters-huge", "100,000", extra=("--n_iters", "1000000000000")),
        demo("n_iters-word", "invalid int", extra=("--n_iters", "x")),
        demo("model_dir-missing", "missing miniature model files", extra=("--model_dir", "{r}/nowhere")),
        demo("model_dir-a-file", "missing miniature model files", extra=("--model_dir", "{r}/odd/garbage")),
        demo("output-is-a-file", "is a file", extra=("--output_dir", "{r}/odd/garbage")),
    ]
    for name, words in (("junk-judge", ("classifier.caffemodel",)), ("junk-encoder", ("encoder.caffemodel",)),
                        ("nan-generator", ("NaN or Inf",)), ("latin1-labels", ("not UTF-8",)),
                        ("empty-labels", ("is empty",)), ("labels-count", ("names 3 classes",)),
                        ("bounds-count", ("values",)), ("fifo-labels", ("not a regular file",))):
        c.append(demo(name, *words, extra=("--evaluate", "--model_dir", f"{{r}}/minis/{name}")))
    c.append(demo("another-run", "records a different run", extra=("--output_dir", "{r}/demo_other", "--n_iters", "2")))
    # download, reproduce, the parsers
    c += [
        Case("download-unknown-group", ("download", "bogus", "--nets_dir", "{r}/nets_dl"), ("unknown download group",)),
        Case("download-nets-dir-a-file", ("download", "released", "--nets_dir", "{r}/odd/garbage"), ("is a file",)),
        Case("download-nets-dir-under-a-file", ("download", "released", "--nets_dir", "{r}/odd/garbage/x"),
             ("not writable",)),
        Case("download-nets-dir-loop", ("download", "released", "--nets_dir", "{r}/odd/loop"), ("symlink",)),
        Case("download-record-junk", ("download", "released", "--nets_dir", "{r}/dl_junk"), ("cannot read",)),
        Case("download-record-folder", ("download", "released", "--nets_dir", "{r}/dl_folder"), ("cannot read",)),
        Case("reproduce-unknown", ("reproduce", "example9"), ("unknown example",)),
        Case("reproduce-n_iters=0", ("reproduce", "example1", "--n_iters", "0"), ("between 1",)),
        Case("reproduce-n_iters-huge", ("reproduce", "example1", "--n_iters", "1000000000000"), ("100,000",)),
        Case("reproduce-n_iters-word", ("reproduce", "example1", "--n_iters", "x"), ("invalid int",)),
        Case("reproduce-offline", ("reproduce", "example2", "--output_dir", "{r}/repro"), ("missing model files",)),
        Case("reproduce-all-offline", ("reproduce", "all", "--output_dir", "{r}/repro"), ("missing model files",)),
    ]
    for command, typo in (("synthesize", "--unti"), ("sweep", "--unit_s"), ("reproduce", "--n_itres"),
                          ("compare", "--smis"), ("download", "--nest_dir"), ("act-range", "--imgs"),
                          ("demo", "--evalute")):
        pos = {"synthesize": ("--unit", "1"), "reproduce": ("example1",),
               "compare": ("{r}/montage.png", "{r}/reference.png"),
               "act-range": ("--images", "{r}/images", "--output", "{r}/ranges/x.txt")}.get(command, ())
        c.append(Case(f"parser-{command}-typo", (command, *pos, typo, "5"), ("unrecognized arguments", "--help")))
    c += [
        Case("parser-no-command", (), ("required",)), Case("parser-unknown-command", ("synth",), ("invalid choice",)),
        Case("parser-synthesize-no-unit", ("synthesize",), ("--unit",)),
        Case("parser-act-range-no-images", ("act-range", "--output", "x"), ("--images",)),
        Case("parser-compare-one-file", ("compare", "a.png"), ("reference",)),
        Case("parser-unit-twice-typo", ("synthesize", "--unit", "1", "--unit2"), ("expected one argument",)),
    ]
    # the miniature model's training entry point
    c += [
        Case("train-unknown-stage", ("bogus",), ("invalid choice",), tool="train"),
        Case("train-checkpoint-negative", ("generator", "--checkpoint_every", "-1", "--out_dir", "{r}/train_junk"),
             (">= 0",), tool="train"),
        Case("train-bounds-junk-encoder", ("bounds", "--out_dir", "{r}/train_junk"), ("encoder.caffemodel",),
             tool="train"),
        Case("train-generator-junk-encoder", ("generator", "--out_dir", "{r}/train_junk"), ("encoder.caffemodel",),
             tool="train"),
        Case("train-bounds-nan-encoder", ("bounds", "--out_dir", "{r}/train_nan"), ("NaN or Inf",), tool="train"),
        Case("train-bounds-no-encoder", ("bounds", "--out_dir", "{r}/odd/folder"), ("needs",), tool="train"),
        Case("train-out-dir-a-file", ("encoder", "--out_dir", "{r}/odd/garbage"), ("is a file",), tool="train"),
        Case("train-typo", ("encoder", "--out-dir", "x"), ("unrecognized arguments",), tool="train"),
    ]
    return c


CASES = _cases()


# --- the files the cases name ---------------------------------------------------------------------------------


def _layer(name: str, kind: str, bottom: str, top: str, body: str = "") -> str:
    return f'layer {{\n  name: "{name}"\n  type: "{kind}"\n  bottom: "{bottom}"\n  top: "{top}"\n{body}}}\n'


def _block(text: str, name: str) -> str:
    start = text.index(f'layer {{\n  name: "{name}"')
    return text[start : text.index("\n}\n", start) + 3]


def _bad_prototxts(r: Path) -> None:
    enc = (MINI_PROTO / "encoder.prototxt").read_text()
    before_prob = 'layer {\n  name: "prob"'
    data = _block(enc, "data")
    nets = {
        "dummy-input": enc.replace(data, 'layer {\n  name: "data"\n  type: "DummyData"\n  top: "data"\n'
                                   "  dummy_data_param { shape { dim: 1 dim: 3 dim: 64 dim: 64 } }\n}\n"),
        "duplicate-names": enc.replace('name: "relu7"', 'name: "fc7"'),
        "unknown-type": enc.replace('type: "LRN"', 'type: "LRNX"', 1),
        "cudnn": enc.replace("convolution_param {", "convolution_param {\n    engine: CUDNN", 1),
        "syntax": "layer { name: ",
        "v1-layers": 'name: "old"\nlayers { name: "a" type: RELU bottom: "data" top: "a" }\n',
        "kernel-too-big": enc.replace("kernel_size: 5", "kernel_size: 400", 1).replace(
            "kernel_size: 3", "kernel_size: 400", 1),
        "two-sources": enc.replace(before_prob, _layer("again", "Power", "fc8", "fc6") + before_prob),
        "no-bottom": enc.replace(before_prob, _layer("lost", "Power", "nowhere", "lost") + before_prob),
        "argmax-path": enc.replace(before_prob, _layer("best", "ArgMax", "fc8", "fc8x") + before_prob),
        "not-from-data": enc.replace(before_prob, 'layer {\n  name: "const"\n  type: "DummyData"\n  top: "const"\n'
                                     "  dummy_data_param { shape { dim: 1 dim: 10 } }\n}\n" + before_prob),
        "long-name": enc.replace('top: "fc8"', 'top: "fc8_' + "x" * 250 + '"').replace(
            'bottom: "fc8"', 'bottom: "fc8_' + "x" * 250 + '"'),
    }
    for name, text in nets.items():
        assert name in ("syntax", "v1-layers") or text != enc, name
        (r / "nets" / f"{name}.prototxt").write_text(text)
    gen = (MINI_PROTO / "generator.prototxt").read_text()
    feat = _block(gen, "feat")
    gens = {
        "dummy-feat": gen.replace(feat, 'layer {\n  name: "feat"\n  type: "DummyData"\n  top: "feat"\n'
                                  "  dummy_data_param { shape { dim: 1 dim: 256 } }\n}\n"),
        "no-output": gen.replace('top: "deconv0"', 'top: "image"').replace('bottom: "deconv0"', 'bottom: "image"'),
        "no-code": gen.replace('"feat"', '"code"'),
        "syntax": "layer { name: ",
        "duplicate-names": gen.replace('name: "defc6"', 'name: "defc7"', 1),
    }
    for name, text in gens.items():
        assert name == "syntax" or text != gen, name
        (r / "gens" / f"{name}.prototxt").write_text(text)


def _bad_caffemodels(r: Path) -> None:
    import caffe
    from caffe.proto import caffe_pb2 as pb

    good = pb.NetParameter()
    good.ParseFromString((MINI_NETS / "encoder.caffemodel").read_bytes())
    learned = [layer for layer in good.layer if layer.blobs]
    last = learned[-1]

    def save(name: str, net: pb.NetParameter | bytes, folder: str = "weights") -> None:
        data = net if isinstance(net, bytes) else net.SerializeToString()
        (r / folder / f"{name}.caffemodel").write_bytes(data)

    def edited(change) -> pb.NetParameter:  # noqa: ANN001 - a function of a copy
        net = pb.NetParameter()
        net.CopyFrom(good)
        change(net)
        return net

    def poke(value: float):  # noqa: ANN202
        def change(net: pb.NetParameter) -> None:
            next(layer for layer in net.layer if layer.name == last.name).blobs[0].data[5] = value
        return change

    save("nan", edited(poke(float("nan"))))
    save("inf", edited(poke(float("inf"))))
    save("junk", bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    raw = (MINI_NETS / "encoder.caffemodel").read_bytes()
    save("truncated", raw[: len(raw) // 2])
    save("other-net", (MINI_NETS / "generator.caffemodel").read_bytes())

    def wrong_shape(net: pb.NetParameter) -> None:
        b = next(layer for layer in net.layer if layer.name == last.name).blobs[0]
        b.shape.dim[0] += 1
    save("wrong-shape", edited(wrong_shape))
    save("missing-layer", edited(lambda net: net.layer.remove(next(x for x in net.layer if x.name == last.name))))

    def duplicate(net: pb.NetParameter) -> None:
        extra = net.layer.add()
        extra.CopyFrom(next(layer for layer in net.layer if layer.name == last.name))
        first = next(layer for layer in net.layer if layer.name == last.name)
        first.blobs[0].shape.dim[0] += 1  # the first entry is wrong, the second right
    save("duplicate-first-wrong", edited(duplicate))

    def legacy(net: pb.NetParameter) -> None:
        b = next(layer for layer in net.layer if layer.name == last.name).blobs[0]
        b.num, b.channels, b.height, b.width = 1, 1, 7, 7
    save("legacy-contradicts", edited(legacy))

    def mixed(net: pb.NetParameter) -> None:
        v1 = net.layers.add()
        v1.name = "extra"
    save("mixed-formats", edited(mixed))

    def double(net: pb.NetParameter) -> None:
        next(layer for layer in net.layer if layer.name == last.name).blobs[1].double_data.extend([0.5] * 3)
    save("double-data-count", edited(double))

    def into_relu(net: pb.NetParameter) -> None:
        relu = next(layer for layer in net.layer if layer.type == "ReLU")
        relu.blobs.add().CopyFrom(last.blobs[1])
    save("blobs-into-relu", edited(into_relu))
    save("hdf5", b"\x89HDF\r\n\x1a\n" + raw[8:])

    def blobless(net: pb.NetParameter) -> None:
        entry = net.layer.add()
        entry.name = last.name  # a second entry for a layer with params, holding none
    save("blobless-entry", edited(blobless))

    gnet = caffe.Net(str(MINI_PROTO / "generator.prototxt"), caffe.TEST,
                     weights=str(MINI_NETS / "generator.caffemodel"))
    for value, name in ((np.nan, "nan"), (np.inf, "inf")):
        layer = list(gnet.params)[-1]
        keep = float(gnet.params[layer][0].data.flat[3])
        gnet.params[layer][0].data.flat[3] = value
        gnet.save(str(r / "gweights" / f"{name}.caffemodel"))
        gnet.params[layer][0].data.flat[3] = keep
    save("junk", bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8)), "gweights")
    save("other-net", raw, "gweights")


def _record(path: Path, params: dict, models: dict | None = None) -> None:
    path.write_text(json.dumps({"tool": "dgn-am", "parameters": params, "models": models or {},
                                "results": {"outputs": {}}}))


def make_files(r: Path) -> None:
    """Every file the cases name, under ``r``."""
    import shutil

    from PIL import Image

    for sub in ("odd", "img", "bad_bounds", "nets", "gens", "weights", "gweights", "configs", "records", "image_sets",
                "minis", "ranges", "cwd"):
        (r / sub).mkdir(parents=True)
    for src, dst in (("encoder.prototxt", "enc.prototxt"), ("generator.prototxt", "gen.prototxt")):
        shutil.copy(MINI_PROTO / src, r / dst)
    for src, dst in (("encoder.caffemodel", "enc.caffemodel"), ("generator.caffemodel", "gen.caffemodel"),
                     ("fc6_bounds.txt", "bounds.txt")):
        shutil.copy(MINI_NETS / src, r / dst)
    odd = r / "odd"
    os.mkfifo(odd / "fifo")
    (odd / "folder").mkdir()
    (odd / "loop").symlink_to(odd / "loop")
    (odd / "dangling").symlink_to(odd / "nowhere")
    (odd / "empty").write_bytes(b"")
    (odd / "garbage").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8)))
    (odd / "latin1").write_bytes("caf\xe9 1 2 3\n".encode("latin-1"))
    with open(odd / "huge", "wb") as f:  # sparse: 3 GiB that take no disk
        f.truncate(3 << 30)
    (odd / "link_to_garbage").symlink_to(odd / "garbage")
    good = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(good).save(r / "good.png")
    (r / "img" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (r / "img" / "big.png").write_bytes(png_claiming(8_500, 8_000))
    (r / "img" / "cut.png").write_bytes((r / "good.png").read_bytes()[:60])
    (r / "img" / "text.jpg").write_text("hello")
    n = len((r / "bounds.txt").read_text().split())
    for name, text in (("short", "1 2 3"), ("word", " ".join(["1"] * (n - 1) + ["abc"])),
                       ("negative", " ".join(["1"] * (n - 1) + ["-1"])), ("nan", " ".join(["1"] * (n - 1) + ["nan"])),
                       ("inf", " ".join(["1"] * (n - 1) + ["inf"])), ("long", " ".join(["1"] * (n + 1)))):
        (r / "bad_bounds" / name).write_text(text + "\n")
    _bad_prototxts(r)
    _bad_caffemodels(r)
    # output folders with something in the way
    for ext in ("jpg", "png", "npz", "json"):
        (r / f"taken_{ext}" / f"{STEM}.{ext}").mkdir(parents=True)
    (r / "taken_debug").mkdir()
    (r / "taken_debug" / f"{STEM}_debug").write_text("mine")
    (r / "user_debug" / f"{STEM}_debug").mkdir(parents=True)
    (r / "user_debug" / f"{STEM}_debug" / "notes.txt").write_text("mine")
    (r / "linked").mkdir()
    (r / "linked" / f"{STEM}.json").symlink_to(odd / "garbage")
    (r / "other_run").mkdir()
    _record(r / "other_run" / f"{STEM}.json", {"unit": 3, "opt_layer": "fc7"})
    (r / "junk_manifest").mkdir()
    (r / "junk_manifest" / f"{STEM}.json").write_text("{ not json")
    (r / "self_input").mkdir()
    shutil.copy(r / "bounds.txt", r / "self_input" / f"{STEM}.png")
    (r / "sweep_other").mkdir()
    _record(r / "sweep_other" / "fc8_0003_02_1.0_2.0__0.json", {"unit": 3, "clip": True})
    # sweep configs
    configs = {"invalid": "units = \n", "unknown-key": "unit = 3\n", "units-float": "units = 1.5\n",
               "bound-number": "units = 1\nbound = 3\n", "opt_layer": "units = 1\nopt_layer = 'fc9'\n",
               "clip": "units = 1\nclip = 2\n", "L2-word": "units = 1\nL2 = 'abc'\n",
               "end_lr-negative": "units = 1\nend_lr = -1\n", "n_iters-huge": "units = 1\nn_iters = 1000000000000\n",
               "grid": "units = '0-999'\nseeds = '0-999'\n"}
    for name, text in configs.items():
        (r / "configs" / f"{name}.toml").write_text(text)
    (r / "configs" / "latin1.toml").write_bytes("units = 'caf\xe9'\n".encode("latin-1"))
    os.mkfifo(r / "configs" / "fifo.toml")
    (r / "configs" / "folder.toml").mkdir()
    # compare inputs: a montage of example 1's size, its reference, records beside copies
    from dgn_am.results import montage

    w, h = montage.RELEASED_GEOMETRY["example1"].size
    picture = np.random.default_rng(4).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(picture).save(r / "montage.png")
    Image.fromarray(picture).save(r / "reference.png")
    Image.fromarray(picture[:, :-3]).save(r / "small.png")
    records = {"good": {"release": "example1"}, "invalid": "{", "list": [1, 2], "release-number": {"release": 5},
               "release-unknown": {"release": "example9"}, "trajectory-words": {"trajectory": ["a"]},
               "trajectory-nan": "NAN", "n_iters-negative": {"n_iters": -3, "shortened": True}}
    for name, value in records.items():
        Image.fromarray(picture).save(r / "records" / f"{name}.png")
        text = value if isinstance(value, str) else json.dumps(value)
        if name == "trajectory-nan":
            text = '{"trajectory": [1.0, NaN]}'
        (r / "records" / f"{name}.json").write_text(text)
    # act-range image folders
    (r / "images").mkdir()
    for k in range(3):
        Image.fromarray(np.roll(good, k, axis=0)).save(r / "images" / f"{'abc'[k]}.png")
    sets = r / "image_sets"
    (sets / "a-file").write_text("x")
    for name in ("empty", "fifo-entry", "loop-entry", "folder-entry", "bomb-entry", "garbage-entry"):
        (sets / name).mkdir()
        shutil.copy(r / "good.png", sets / name / "ok.png")
    (sets / "empty" / "ok.png").unlink()
    (sets / "empty" / "readme.md").write_text("no images")
    os.mkfifo(sets / "fifo-entry" / "x.png")
    (sets / "loop-entry" / "x.png").symlink_to(sets / "loop-entry" / "x.png")
    (sets / "folder-entry" / "x.png").mkdir()
    (sets / "bomb-entry" / "x.png").write_bytes(png_claiming(100_000, 100_000))
    (sets / "garbage-entry" / "x.png").write_bytes(b"\x89PNG garbage")
    # demo model folders, each with one thing wrong
    minis = r / "minis"
    for name in ("junk-judge", "junk-encoder", "nan-generator", "latin1-labels", "empty-labels", "labels-count",
                 "bounds-count", "fifo-labels"):
        shutil.copytree(MINI_NETS, minis / name)
    (minis / "junk-judge" / "classifier.caffemodel").write_bytes(b"\x08\x01" + bytes(range(256)) * 8)
    (minis / "junk-encoder" / "encoder.caffemodel").write_bytes(bytes(range(256)) * 8)
    shutil.copy(r / "gweights" / "nan.caffemodel", minis / "nan-generator" / "generator.caffemodel")
    (minis / "latin1-labels" / "labels.txt").write_bytes("disc\ncaf\xe9\n".encode("latin-1"))
    (minis / "empty-labels" / "labels.txt").write_text("\n\n")
    (minis / "labels-count" / "labels.txt").write_text("a\nb\nc\n")
    (minis / "bounds-count" / "fc6_bounds.txt").write_text("1 2 3\n")
    (minis / "fifo-labels" / "labels.txt").unlink()
    os.mkfifo(minis / "fifo-labels" / "labels.txt")
    (r / "demo_other").mkdir()
    _record(r / "demo_other" / "fc8_0000_02_0.97_1.0__0.json", {"unit": 0, "L2": 0.5})
    # download records that cannot be read; training folders with a bad encoder
    (r / "dl_junk").mkdir()
    (r / "dl_junk" / "manifest.json").write_text("[not json")
    (r / "dl_folder" / "manifest.json").mkdir(parents=True)
    (r / "train_junk").mkdir()
    (r / "train_junk" / "encoder.caffemodel").write_bytes(bytes(range(256)) * 8)
    (r / "train_nan").mkdir()
    shutil.copy(r / "weights" / "nan.caffemodel", r / "train_nan" / "encoder.caffemodel")
    (r / "nets_empty").mkdir()


# --- running them -------------------------------------------------------------------------------------------


def _snapshot(r: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``r`` (folders may appear: an output folder made before a refusal)."""
    out = {}
    for dirpath, _, names in os.walk(r):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            out[os.path.relpath(path, r)] = (st.st_size, st.st_mtime_ns)
    return out


def _run_case(case: Case, r: Path) -> dict:
    from dgn_am import cli
    from dgn_am.mini import train

    argv = [a.replace("{r}", str(r)) for a in case.argv]
    before = _snapshot(r)
    err, out = io.StringIO(), io.StringIO()

    seconds = int(os.environ.get("DGN_AM_CORPUS_TIMEOUT", "60"))

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"the case ran over {seconds} s (a hang)")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = (cli.main if case.tool == "dgn-am" else train.main)(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a traceback is what the corpus exists to catch
        code, err = -1, io.StringIO(err.getvalue() + traceback.format_exc())
    finally:
        signal.alarm(0)
    after = _snapshot(r)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return {"name": case.name, "code": code, "stderr": err.getvalue(), "stdout": out.getvalue()[-2000:],
            "changed": changed}


def _child(r: Path, results: Path) -> None:
    os.chdir(r / "cwd")
    os.environ["DGN_AM_NETS"] = str(r / "nets_empty")
    with open(results, "a") as f:
        for case in CASES:
            f.write(json.dumps({"start": case.name}) + "\n")
            f.flush()
            f.write(json.dumps(_run_case(case, r)) + "\n")
            f.flush()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    r = tmp_path_factory.mktemp("corpus")
    make_files(r)
    results = r.parent / "corpus_results.jsonl"
    done: dict[str, dict] = {}
    while len(done) < len(CASES):  # after a crash, go on after the case that crashed
        env = dict(os.environ, GLOG_minloglevel="2", DGN_AM_CORPUS_SKIP=",".join(done))
        proc = subprocess.run([sys.executable, "-m", "tests.cli.test_bad_inputs", str(r), str(results)], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=False)
        started = None
        for line in results.read_text().splitlines():
            row = json.loads(line)
            if "start" in row:
                started = row["start"]
            else:
                done[row["name"]] = row
                started = None
        if started is not None:  # the child died inside this case: Caffe aborted, or worse
            done[started] = {"name": started, "code": proc.returncode, "stderr": proc.stderr[-3000:],
                             "stdout": "", "changed": ["(the process died)"]}
        elif proc.returncode != 0:
            raise AssertionError(f"the corpus runner failed: {proc.stderr[-3000:]}")
        results.write_text("".join(json.dumps(v) + "\n" for v in done.values() if "start" not in v))
    return done


def test_the_corpus_is_large_and_its_names_unique():
    assert len({c.name for c in CASES}) == len(CASES) >= 300
    assert not [c.name for c in CASES if "," in c.name]  # the runner passes names in a comma list


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clean_refusal(outcomes, case):
    got = outcomes[case.name]
    lines = [ln for ln in got["stderr"].splitlines() if ln.strip()]
    assert got["code"] == 2, got
    assert len(lines) == 1 and "error:" in lines[0], got["stderr"]
    assert "Traceback" not in got["stderr"]
    for word in case.words:
        assert word in lines[0], lines[0]
    assert got["changed"] == [], got["changed"]  # not one file written or changed


if __name__ == "__main__":
    skip = set(filter(None, os.environ.get("DGN_AM_CORPUS_SKIP", "").split(",")))
    CASES[:] = [c for c in CASES if c.name not in skip]
    _child(Path(sys.argv[1]), Path(sys.argv[2]))
