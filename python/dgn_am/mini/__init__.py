"""The miniature DGN prior: a dataset the project draws itself, and E, G, C, D (and a judge) trained on it.

The pretrained ImageNet models cannot be downloaded everywhere, so this package makes a small world in
which the whole method can be shown offline: ``data`` draws 64x64 images of ten shape classes from a
seed (and fixes the split sizes and seed every stage uses), ``netspecs`` defines the nets, ``solvers``
is the thin layer that trains them through pycaffe, ``losses`` computes the generator's NumPy losses,
``gan`` trains G (and D) the DeePSiM way, ``train`` runs the stages and regenerates every shipped weight
file (``python -m dgn_am.mini.train all``), and ``demo`` and ``evaluate`` are ``dgn-am demo``.
"""
