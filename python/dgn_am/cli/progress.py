"""Progress for people: tqdm bars on stderr, built from the library's callbacks, and durations in words."""

from __future__ import annotations

import sys
from collections.abc import Callable


class Bar:
    """A tqdm bar on stderr that appears at its first step, so a run refused by its checks prints one line.

    ``restart`` begins a new bar (the next panel of a reproduction); ``quiet`` shows nothing at all.
    """

    def __init__(self, quiet: bool, total: int | None, desc: str, unit: str) -> None:
        self.quiet, self.total, self.desc, self.unit = quiet, total, desc, unit
        self.bar = None

    def restart(self, total: int | None, desc: str) -> None:
        self.close()
        self.total, self.desc = total, desc

    def step(self, n: int = 1, refresh: bool = False, **postfix: object) -> None:
        """Advance by ``n`` (0: only show ``postfix``, refreshed at once when ``refresh``)."""
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr)
        if postfix:
            self.bar.set_postfix(postfix, refresh=refresh)
        if n:
            self.bar.update(n)

    def counter(self) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for the library's streaming loops (topk, accuracy, neighbors)."""
        seen = [0]

        def progress(done: int, total: int) -> None:
            self.total = total
            self.step(done - seen[0])
            seen[0] = done

        return progress

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 95 s, 12 min, 3.5 h."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"
