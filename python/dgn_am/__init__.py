"""dgn-am: DGN-AM (Nguyen et al., NIPS 2016), activation maximization through a deep generator network.

Modules, each with one job:

- ``algorithm``: the optimization loop, step for step as the released code ran it (NumPy only).
- ``objectives``: which unit to drive, as a one-hot gradient and an activation read-out.
- ``images``: crops, the saved-image convention, and turning a real image into a start code's input.
- ``codes``: start codes and per-unit bound files.
- ``netinfo``: plain descriptions of nets and caffemodels, and the checks made on them before Caffe loads.
- ``netsummary``: what each blob of a net is (units, receptive field, target or code layer): ``dgn-am layers``.
- ``caffe_backend``: the only module that imports Caffe.
- ``outputs``: file names, atomic writes, and what may stand where an output goes.
- ``errors``: the one user-facing exception, and the one reader of user-named files.
- ``hashing``: the one reader that hashes a file (sha256, sha1).
- ``locks``: per-run and gallery locks between processes sharing an output folder.
- ``cliargs``: ``argparse`` with one-line errors, for every command line of the project.
- ``download``: fetching and verifying the pretrained models and released data.
- ``paths``: where the project's prototxts and models live.
- ``cli``: the ``dgn-am`` command.
"""

__version__ = "0.1.0"
