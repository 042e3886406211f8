# dgn-am with Caffe built for CUDA 13.0, from a Debian base and PyPI alone. Models are not baked in:
# mount them at /models (read-only is enough) and a folder for the results at /out.
#   docker build -t dgn-am .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD/nets:/models:ro" -v "$PWD/out:/out" \
#     dgn-am synthesize --gpu 0 --output_dir /out ...
# The default command is the offline demo (CPU; no GPU needed), written to /out/demo.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    DGN_AM_CACHE_DIR=/opt/dgn-am-cache \
    DGN_AM_NETS=/models \
    CUDA_HOME=/opt/cuda \
    GLOG_minloglevel=2 \
    PYTHONDONTWRITEBYTECODE=1

# Only what the scripts need to start; scripts/install_caffe.sh installs Caffe's build dependencies.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev ca-certificates git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dgn-am

# Layers that change rarely come first, so that editing the Python code does not rebuild Caffe:
# 1. the CUDA toolkit (nvcc, runtime, cuBLAS, cuRAND) from NVIDIA's wheels, and a venv with NumPy;
COPY scripts/cuda_toolkit_from_wheels.sh scripts/
# hadolint ignore=DL3013
RUN python3 -m venv .venv \
    && .venv/bin/pip install -q --no-cache-dir --disable-pip-version-check numpy \
    && PYTHON=.venv/bin/python scripts/cuda_toolkit_from_wheels.sh "$CUDA_HOME"

# 2. Caffe, for every GPU architecture CUDA 13.0 has from Pascal on (Turing, sm_75, is its oldest), plus PTX;
COPY scripts/install_caffe.sh scripts/
COPY scripts/lib/debian.sh scripts/lib/cuda.sh scripts/lib/
COPY scripts/caffe-patches scripts/caffe-patches
RUN scripts/install_caffe.sh --cuda --python .venv/bin/python && rm -rf /var/lib/apt/lists/*

# 3. the project: the same script CI runs, which finds the Caffe build above in its cache.
COPY . .
RUN scripts/setup.sh --cuda --no-run \
    && rm -rf /root/.cache/pip \
    && install -d -m 1777 /out

ENTRYPOINT ["/opt/dgn-am/.venv/bin/dgn-am"]
# The main job: the offline miniature demo with its evaluation, as any user (docker run --user ...).
CMD ["demo", "--evaluate", "--output_dir", "/out/demo"]
