"""Which model files a run uses and how they arrive: ``models`` (the defaults, and the one rule for files
that are not there yet), ``catalogue`` (where each file comes from and how to check it), ``fetch`` and
``archives`` (the downloader), ``actrange`` (bound files) and ``labels`` (unit names)."""
