"""The miniature DGN prior: a dataset the project draws itself, and E, G, C, D (and a judge) trained on it.

The pretrained ImageNet models cannot be downloaded everywhere, so this package makes a small world in
which the whole method can be shown offline: ``data`` draws 64x64 images of ten shape classes from a
seed, ``netspecs`` defines the nets, ``solvers`` is the thin layer that trains them through pycaffe,
and ``train`` regenerates every shipped weight file (``python -m dgn_am.mini.train all``).
"""
