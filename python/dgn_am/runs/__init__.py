"""Orchestration: one run's rules (``run``), the session that loads the nets once and makes runs
(``session``, with ``previous`` for what an earlier run left), sweeps (``grid``, ``sweep``, ``workers``),
the released examples (``releases``, ``reproduce``) and act-range files from images (``actrange``)."""
