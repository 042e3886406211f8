# dgn-am with Caffe built for CUDA. Models are not baked in: mount them at /models.
#   docker build -t dgn-am .
#   docker run --gpus all -v "$PWD/nets:/models" -v "$PWD/output:/out" dgn-am synthesize --gpu 0 ...
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    DGN_AM_CACHE_DIR=/opt/dgn-am-cache \
    DGN_AM_NETS=/models \
    CUDA_HOME=/usr/local/cuda

# Only what the install script itself needs to start; it installs Caffe's build dependencies.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dgn-am
COPY . .

# The same script CI runs, with CUDA on (cuDNN too where one that Caffe 1.0 supports is present).
RUN scripts/setup.sh --cuda --no-run && rm -rf /var/lib/apt/lists/*

ENTRYPOINT ["/opt/dgn-am/.venv/bin/dgn-am"]
# The main job: the offline miniature demo with its evaluation (output in /opt/dgn-am/output/demo).
CMD ["demo", "--evaluate"]
