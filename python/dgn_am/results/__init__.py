"""What runs write and read back: images read from users (``images``), a run's files (``outputs``), its
record (``manifest``), montages, galleries and comparisons with the released images (``compare``)."""
