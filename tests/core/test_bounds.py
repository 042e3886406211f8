"""Bound statistics (mean + k std, batch by batch) and the act_range file format, both ways."""

from __future__ import annotations

import numpy as np
import pytest

from dgn_am.assets.actrange import read_bounds
from dgn_am.common.errors import InputError
from dgn_am.core import bounds as code_bounds


def test_running_stats_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.gamma(0.5, 3.0, (37, 4, 3)).astype(np.float32)
    stats = code_bounds.RunningStats()
    for lo, hi in [(0, 1), (1, 11), (11, 11), (11, 37)]:  # uneven batches, one of them empty
        stats.add(x[lo:hi])
    flat = x.reshape(37, -1).astype(np.float64)
    assert stats.count == 37
    np.testing.assert_allclose(stats.mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, flat.std(axis=0), rtol=1e-10)
    np.testing.assert_allclose(code_bounds.bounds(stats, 2.5), flat.mean(axis=0) + 2.5 * flat.std(axis=0), rtol=1e-10)
    with pytest.raises(ValueError):
        stats.add(np.ones((2, 5)))


def test_bounds_are_never_negative():
    stats = code_bounds.RunningStats()
    stats.add(np.array([[-5.0, 1.0], [-5.0, 3.0]]))
    np.testing.assert_array_equal(code_bounds.bounds(stats, 1.0), [0.0, 3.0])


def test_format_is_one_line_like_the_released_files(tmp_path):
    values = np.array([0.4, 0.5, 1.5, 2.49, 11.6])
    text = code_bounds.format_bounds(values)
    assert text == "0 0 2 2 12\n"  # integers, rounded to nearest (half to even)
    assert code_bounds.format_bounds(values, 2) == "0.40 0.50 1.50 2.49 11.60\n"
    path = tmp_path / "b.txt"
    path.write_text(code_bounds.format_bounds(values, 3))
    np.testing.assert_allclose(read_bounds(path, 5), values)  # the synthesize side reads it back


def test_parse_bounds_names_the_file_and_the_fault():
    assert code_bounds.parse_bounds("1 2.5  3\n", 3).tolist() == [1.0, 2.5, 3.0]
    for text, fault in (("1 2", "has 2 values"), ("1 x 3", "non-number"), ("1 -2 3", "negative"),
                        ("1 inf 3", "non-finite")):
        with pytest.raises(InputError, match=fault) as info:
            code_bounds.parse_bounds(text, 3, "act/fc6.txt")
        assert "act/fc6.txt" in str(info.value)


def test_per_channel_bounds_cover_every_position_of_their_channel():
    # 3x/conv4.txt holds one value per channel (384); a conv code is C x H x W, flattened channel-major.
    values = code_bounds.parse_bounds("1 2 3\n", 3 * 2 * 2, "act/conv4.txt", (1, 3, 2, 2))
    assert values.tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert code_bounds.parse_bounds(" ".join(["5"] * 12), 12, "x", (1, 3, 2, 2)).tolist() == [5.0] * 12
    with pytest.raises(InputError, match=r"has 4 values; the code has 12 units or one per channel \(3\)"):
        code_bounds.parse_bounds("1 2 3 4", 12, "x", (1, 3, 2, 2))
    with pytest.raises(InputError, match="has 3 values; the code has 4096 units$"):
        code_bounds.parse_bounds("1 2 3", 4096, "x", (1, 4096))   # a flat code has no channels to spread over
