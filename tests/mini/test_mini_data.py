"""The miniature dataset: deterministic from its seed, the shapes it promises, the blob convention, files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dgn_am.mini import data


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return data.make_split("train", 6, seed=3)


def test_split_shapes_and_labels(small):
    images, labels = small
    assert images.shape == (6 * len(data.CLASSES), 64, 64, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 6))
    assert len(set(data.CLASSES)) == 10


def test_same_seed_same_images_other_seed_or_split_others(small):
    images, _ = small
    again, _ = data.make_split("train", 6, seed=3)
    np.testing.assert_array_equal(images, again)
    other_seed, _ = data.make_split("train", 6, seed=4)
    heldout, _ = data.make_split("heldout", 6, seed=3)
    seen = {im.tobytes() for im in images}
    assert len(seen) == len(images)
    for other in (other_seed, heldout):  # no image of one appears in the other: different streams
        assert not seen & {im.tobytes() for im in other}


def test_bad_split_arguments():
    with pytest.raises(ValueError):
        data.make_split("validation", 1)
    with pytest.raises(ValueError):
        data.make_split("train", -1)


def test_shapes_have_their_geometry():
    """The class shapes, drawn alone at radius 24 in the centre, have the areas and holes that set them apart."""
    r = 24.0
    area = {name: data.shape_mask(i, radius=r).sum() / r**2 for i, name in enumerate(data.CLASSES)}
    assert area["disc"] == pytest.approx(np.pi * 0.9**2, rel=0.02)
    assert area["square"] == pytest.approx(1.44**2, rel=0.02)
    assert area["triangle"] == pytest.approx(3 * np.sqrt(3) / 4, rel=0.03)  # circumradius 1
    assert area["star"] < area["triangle"] < area["disc"]
    ring = data.shape_mask(data.CLASSES.index("ring"), radius=r)
    assert ring[32, 32] == 0 and ring[32, 32 + int(0.68 * r)] == 1  # a hole in the middle, a band around it
    crescent = data.shape_mask(data.CLASSES.index("crescent"), radius=r)
    assert crescent[32, 32] == 0 and crescent[32, 32 - int(0.7 * r)] == 1  # bitten on one side only
    board = data.shape_mask(data.CLASSES.index("checkerboard"), radius=r)
    cell = 0.4 * r
    assert board[int(32 + cell / 2), int(32 + cell / 2)] == 1 and board[int(32 + cell / 2), int(32 - cell / 2)] == 0
    stripes = data.shape_mask(data.CLASSES.index("stripes"), radius=r)
    column = stripes[int(32 - 0.9 * r) : int(32 + 0.9 * r), 32] > 0.5
    assert np.count_nonzero(np.diff(column.astype(int))) >= 6  # bars and gaps alternate down the shape
    # Rotation turns a shape about its centre: a square turned a quarter is the same square.
    square = data.CLASSES.index("square")
    np.testing.assert_allclose(data.shape_mask(square, rotation=np.pi / 2), data.shape_mask(square), atol=1e-4)


def test_shape_stands_out_from_background():
    """Where the shape covers a pixel, the colour is far from the background around it."""
    rng = np.random.default_rng(0)
    images = data.draw(data.CLASSES.index("disc"), 20, rng).astype(float)
    for im in images:
        corners = np.concatenate([im[:3, :3].reshape(-1, 3), im[-3:, -3:].reshape(-1, 3)])
        far = np.linalg.norm(im.reshape(-1, 3) - np.median(corners, axis=0), axis=1)
        assert np.mean(far > 60) > 0.08  # a disc of radius >= 13 px covers >= 8% of the image


def test_blob_convention_round_trip(small):
    images, _ = small
    blob = data.to_blob(images)
    assert blob.shape == (len(images), 3, 64, 64) and blob.dtype == np.float32
    red = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    red[..., 0] = 255
    b = data.to_blob(red)
    assert b[0, 2].min() == 127 and b[0, 0].max() == -128  # BGR, pixel - 128
    np.testing.assert_array_equal(data.from_blob(blob), images)
    assert data.from_blob(np.full((1, 3, 2, 2), 500, dtype=np.float32)).max() == 255  # clipped
    with pytest.raises(ValueError):
        data.to_blob(images[0])


def test_write_folder_and_grid(small, tmp_path):
    images, labels = small
    paths = data.write_folder(images[::6], labels[::6], tmp_path / "png")
    assert [p.name for p in paths][:2] == ["00000_disc.png", "00001_square.png"]
    for path, im in zip(paths, images[::6], strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), im)
    g = data.grid(images[:5], cols=4, pad=2)
    assert g.shape == (2 * 66 + 2, 4 * 66 + 2, 3)
    np.testing.assert_array_equal(g[2:66, 2:66], images[0])
