"""What every layer may use: the one user-facing error and reader of user files (``errors``), where files
live (``paths``), hashing and atomic writes (``files``), the disk cache, locks between processes, the
project's argparse (``cliargs``) and the version. Nothing here knows about nets."""
