"""The pixel convention's one owner: blobs are BGR minus a mean, float32; crops; the saved-image range."""

from __future__ import annotations

import numpy as np
import pytest

from dgn_am.core.pixels import Pixels, center_crop, crop_offset, encoder_input, to_display, to_uint8


def _rgb(n: int = 2, h: int = 5, w: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_a_constant_mean_round_trips_and_flips_to_bgr():
    rgb = _rgb()
    blob = Pixels(128.0).to_blob(rgb)
    assert blob.dtype == np.float32 and blob.shape == (2, 3, 5, 7)
    np.testing.assert_array_equal(blob[:, 0], rgb[..., 2].astype(np.float32) - 128)  # channel 0 is blue
    np.testing.assert_array_equal(Pixels(128.0).to_rgb(blob), rgb)
    assert Pixels(128.0).to_rgb(np.full((1, 3, 1, 1), 500, np.float32)).max() == 255  # clipped


def test_a_mean_image_subtracts_its_centre_crop():
    mean = np.arange(3 * 9 * 11, dtype=np.float32).reshape(3, 9, 11)
    rgb = _rgb(1)
    blob = Pixels(mean).to_blob(rgb)
    top, left = crop_offset(9, 5), crop_offset(11, 7)
    expected = rgb[0].transpose(2, 0, 1)[::-1].astype(np.float32) - mean[:, top : top + 5, left : left + 7]
    np.testing.assert_array_equal(blob[0], expected)
    np.testing.assert_array_equal(Pixels(mean).to_rgb(blob), rgb)


def test_encoder_input_is_the_released_preprocessing():
    # resize (bilinear, 8-bit), RGB -> BGR, minus the centre crop of the mean image: written out by hand
    from PIL import Image

    rgb = _rgb(1, 40, 30)[0]
    mean = np.random.default_rng(1).uniform(90, 130, (3, 32, 32)).astype(np.float32)
    resized = np.asarray(Image.fromarray(rgb).resize((24, 24), Image.BILINEAR), dtype=np.float32)
    expected = np.transpose(resized, (2, 0, 1))[::-1][np.newaxis] - center_crop(mean[np.newaxis], (24, 24))
    np.testing.assert_array_equal(encoder_input(rgb, mean, (24, 24)), expected.astype(np.float32))


def test_saved_images_use_the_released_range():
    blob = np.array([[[-200.0, 0.0]], [[0.0, 0.0]], [[120.0, 60.0]]])  # 3 x 1 x 2, BGR
    shown = to_uint8(to_display(blob))
    assert shown.shape == (1, 2, 3)
    assert shown[0, 0].tolist() == [255, 128, 0]  # R = 120 -> 255, G = 0 -> 128, B = -200 clipped -> 0
    with pytest.raises(ValueError):
        Pixels().to_blob(_rgb()[0])  # one image is 1 x H x W x 3, not H x W x 3
