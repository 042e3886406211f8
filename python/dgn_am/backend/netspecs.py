"""The project's network definitions, written with caffe.NetSpec (FACTS §4).

Layer names match the released caffemodels, since Caffe pairs weights with layers by name. Every
learnable layer gets ``lr_mult: 0``: these are deploy nets for visualization, never trained. (That
alone does not stop Caffe computing weight gradients: ``force_backward: true`` turns them all on, so
``backend.load_net`` turns them off on the nets it drives backward.)

``scripts/make_prototxts.py`` writes them into ``prototxt/``; a test checks the files are current.
"""

from __future__ import annotations

from typing import Any

from .runtime import caffe

FROZEN = [{"lr_mult": 0, "decay_mult": 0}, {"lr_mult": 0, "decay_mult": 0}]


def _layers() -> tuple[Any, Any]:
    c = caffe()
    return c.layers, c.NetSpec


def _alexnet(name: str, num_classes: int, batch: int) -> Any:
    """The AlexNet variant that CaffeNet and the Places205 AlexNet share (FACTS §4), up to prob.

    The released deploy files also hold Dropout layers after fc6 and fc7; they are left out here
    because these nets only ever run in the TEST phase, where Dropout is the identity.
    """
    L, NetSpec = _layers()
    n = NetSpec()
    n.data = L.Input(shape={"dim": [batch, 3, 227, 227]})

    def conv(bottom: Any, nout: int, k: int, stride: int = 1, pad: int = 0, group: int = 1) -> Any:
        return L.Convolution(bottom, num_output=nout, kernel_size=k, stride=stride, pad=pad, group=group,
                             param=FROZEN)

    def lrn(bottom: Any) -> Any:
        return L.LRN(bottom, local_size=5, alpha=1e-4, beta=0.75)

    def maxpool(bottom: Any) -> Any:
        return L.Pooling(bottom, pool=0, kernel_size=3, stride=2)  # 0 = MAX

    n.conv1 = conv(n.data, 96, 11, stride=4)
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.pool1 = maxpool(n.conv1)
    n.norm1 = lrn(n.pool1)
    n.conv2 = conv(n.norm1, 256, 5, pad=2, group=2)
    n.relu2 = L.ReLU(n.conv2, in_place=True)
    n.pool2 = maxpool(n.conv2)
    n.norm2 = lrn(n.pool2)
    n.conv3 = conv(n.norm2, 384, 3, pad=1)
    n.relu3 = L.ReLU(n.conv3, in_place=True)
    n.conv4 = conv(n.conv3, 384, 3, pad=1, group=2)
    n.relu4 = L.ReLU(n.conv4, in_place=True)
    n.conv5 = conv(n.conv4, 256, 3, pad=1, group=2)
    n.relu5 = L.ReLU(n.conv5, in_place=True)
    n.pool5 = maxpool(n.conv5)
    n.fc6 = L.InnerProduct(n.pool5, num_output=4096, param=FROZEN)
    n.relu6 = L.ReLU(n.fc6, in_place=True)
    n.fc7 = L.InnerProduct(n.fc6, num_output=4096, param=FROZEN)
    n.relu7 = L.ReLU(n.fc7, in_place=True)
    n.fc8 = L.InnerProduct(n.fc7, num_output=num_classes, param=FROZEN)
    n.prob = L.Softmax(n.fc8)
    proto = n.to_proto()
    proto.name = name
    proto.force_backward = True
    return proto


def caffenet(batch: int = 1) -> Any:
    """CaffeNet (BVLC reference) for visualization: BGR mean-subtracted 227x227 input, up to prob."""
    return _alexnet("CaffeNet", 1000, batch)


def places205_alexnet(batch: int = 1) -> Any:
    """MIT's Places205 AlexNet (placesCNN release): CaffeNet's architecture with 205 scene classes in fc8."""
    return _alexnet("Places205-CNN", 205, batch)


#: GoogLeNet's inception modules in order: name, then the outputs of its 1x1, 3x3_reduce, 3x3,
#: 5x5_reduce, 5x5 and pool_proj convolutions (bvlc_googlenet, as in Szegedy et al. 2015, table 1).
#: The max pools (k3 s2) that halve the grid before a module, by module.
GRID_POOLS = {"4a": "pool3/3x3_s2", "5a": "pool4/3x3_s2"}
INCEPTIONS: list[tuple[str, tuple[int, int, int, int, int, int]]] = [
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]


def googlenet(batch: int = 1) -> Any:
    """BVLC GoogLeNet for visualization: BGR mean-subtracted 224x224 input, up to prob.

    Layer names contain slashes (``inception_3a/1x1``), so tops are set by item, not attribute. Each
    ReLU is in place on its convolution, as in the release. The release's Dropout after pool5 is left
    out (the identity in the TEST phase), as are the auxiliary classifiers, which only the
    train_val net has; Caffe skips their weights in the caffemodel.
    """
    L, NetSpec = _layers()
    P = caffe().params
    n = NetSpec()
    n.data = L.Input(shape={"dim": [batch, 3, 224, 224]})

    def conv_relu(bottom: Any, name: str, relu: str, nout: int, k: int, stride: int = 1, pad: int = 0) -> Any:
        n[name] = L.Convolution(bottom, num_output=nout, kernel_size=k, stride=stride, pad=pad, param=FROZEN)
        n[relu] = L.ReLU(n[name], in_place=True)
        return n[name]

    def maxpool(bottom: Any, name: str, stride: int, pad: int = 0) -> Any:
        n[name] = L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=3, stride=stride, pad=pad)
        return n[name]

    def lrn(bottom: Any, name: str) -> Any:
        n[name] = L.LRN(bottom, local_size=5, alpha=1e-4, beta=0.75)
        return n[name]

    def inception(bottom: Any, module: str, outs: tuple[int, int, int, int, int, int]) -> Any:
        o1, r3, o3, r5, o5, proj = outs
        pre = f"inception_{module}/"
        branches = [conv_relu(bottom, pre + "1x1", pre + "relu_1x1", o1, 1)]
        reduce3 = conv_relu(bottom, pre + "3x3_reduce", pre + "relu_3x3_reduce", r3, 1)
        branches.append(conv_relu(reduce3, pre + "3x3", pre + "relu_3x3", o3, 3, pad=1))
        reduce5 = conv_relu(bottom, pre + "5x5_reduce", pre + "relu_5x5_reduce", r5, 1)
        branches.append(conv_relu(reduce5, pre + "5x5", pre + "relu_5x5", o5, 5, pad=2))
        pooled = maxpool(bottom, pre + "pool", stride=1, pad=1)
        branches.append(conv_relu(pooled, pre + "pool_proj", pre + "relu_pool_proj", proj, 1))
        n[pre + "output"] = L.Concat(*branches)
        return n[pre + "output"]

    top = conv_relu(n.data, "conv1/7x7_s2", "conv1/relu_7x7", 64, 7, stride=2, pad=3)
    top = lrn(maxpool(top, "pool1/3x3_s2", stride=2), "pool1/norm1")
    top = conv_relu(top, "conv2/3x3_reduce", "conv2/relu_3x3_reduce", 64, 1)
    top = conv_relu(top, "conv2/3x3", "conv2/relu_3x3", 192, 3, pad=1)
    top = maxpool(lrn(top, "conv2/norm2"), "pool2/3x3_s2", stride=2)
    for module, outs in INCEPTIONS:
        if module in GRID_POOLS:
            top = maxpool(top, GRID_POOLS[module], stride=2)
        top = inception(top, module, outs)
    n["pool5/7x7_s1"] = L.Pooling(top, pool=P.Pooling.AVE, kernel_size=7, stride=1)
    n["loss3/classifier"] = L.InnerProduct(n["pool5/7x7_s1"], num_output=1000, param=FROZEN)
    n.prob = L.Softmax(n["loss3/classifier"])
    proto = n.to_proto()
    proto.name = "GoogleNet"
    proto.force_backward = True
    return proto


def generator(layer: str, batch: int = 1) -> Any:
    """A DeePSiM generator inverting CaffeNet's ``layer`` (fc6, fc7 or pool5); output blob deconv0.

    Every ReLU is leaky with slope 0.3. The reshape copies the batch dimension (``dim: 0``), so the
    batch can change without editing the file.
    """
    L, NetSpec = _layers()
    n = NetSpec()

    def leaky(bottom: Any) -> Any:
        return L.ReLU(bottom, negative_slope=0.3, in_place=True)

    def deconv(bottom: Any, nout: int, k: int, stride: int, pad: int) -> Any:
        return L.Deconvolution(bottom, param=FROZEN,
                               convolution_param={"num_output": nout, "kernel_size": k, "stride": stride, "pad": pad})

    if layer in ("fc6", "fc7"):
        n.feat = L.Input(shape={"dim": [batch, 4096]})
        n.defc7 = L.InnerProduct(n.feat, num_output=4096, param=FROZEN)
        n.relu_defc7 = leaky(n.defc7)
        n.defc6 = L.InnerProduct(n.defc7, num_output=4096, param=FROZEN)
        n.relu_defc6 = leaky(n.defc6)
        n.defc5 = L.InnerProduct(n.defc6, num_output=4096, param=FROZEN)
        n.relu_defc5 = leaky(n.defc5)
        n.reshape_defc5 = L.Reshape(n.defc5, shape={"dim": [0, 256, 4, 4]})
        top = n.reshape_defc5
    elif layer == "pool5":
        n.feat = L.Input(shape={"dim": [batch, 256, 6, 6]})
        n.Rconv6 = L.Convolution(n.feat, num_output=512, kernel_size=3, pad=1, param=FROZEN)
        n.relu_Rconv6 = leaky(n.Rconv6)
        n.Rconv7 = L.Convolution(n.Rconv6, num_output=512, kernel_size=3, pad=1, param=FROZEN)
        n.relu_Rconv7 = leaky(n.Rconv7)
        n.Rconv8 = L.Convolution(n.Rconv7, num_output=512, kernel_size=3, pad=0, param=FROZEN)
        n.relu_Rconv8 = leaky(n.Rconv8)
        top = n.Rconv8
    else:
        raise ValueError(f"no generator for layer {layer!r}")

    n.deconv5 = deconv(top, 256, 4, 2, 1)
    n.relu_deconv5 = leaky(n.deconv5)
    n.conv5_1 = deconv(n.deconv5, 512, 3, 1, 1)
    n.relu_conv5_1 = leaky(n.conv5_1)
    n.deconv4 = deconv(n.conv5_1, 256, 4, 2, 1)
    n.relu_deconv4 = leaky(n.deconv4)
    n.conv4_1 = deconv(n.deconv4, 256, 3, 1, 1)
    n.relu_conv4_1 = leaky(n.conv4_1)
    n.deconv3 = deconv(n.conv4_1, 128, 4, 2, 1)
    n.relu_deconv3 = leaky(n.deconv3)
    n.conv3_1 = deconv(n.deconv3, 128, 3, 1, 1)
    n.relu_conv3_1 = leaky(n.conv3_1)
    n.deconv2 = deconv(n.conv3_1, 64, 4, 2, 1)
    n.relu_deconv2 = leaky(n.deconv2)
    n.deconv1 = deconv(n.deconv2, 32, 4, 2, 1)
    n.relu_deconv1 = leaky(n.deconv1)
    n.deconv0 = deconv(n.deconv1, 3, 4, 2, 1)
    proto = n.to_proto()
    proto.name = f"DeePSiM_{layer}_generator"
    proto.force_backward = True
    return proto


def all_definitions() -> dict[str, Any]:
    """File name (in prototxt/) to NetParameter, for every net the project defines."""
    return {
        "caffenet.prototxt": caffenet(),
        "places205_alexnet.prototxt": places205_alexnet(),
        "googlenet.prototxt": googlenet(),
        "generator_fc6.prototxt": generator("fc6"),
        "generator_fc7.prototxt": generator("fc7"),
        "generator_pool5.prototxt": generator("pool5"),
    }


def render(proto: Any) -> str:
    """Prototxt text with a header saying where the file comes from."""
    return "# Generated by scripts/make_prototxts.py (dgn_am.backend.netspecs); do not edit by hand.\n" + str(proto)
