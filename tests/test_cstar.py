"""Tests for C* chain coding of region contours (moric_jax.regions)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage
from skimage import data, draw, transform

from moric_jax.regions import chaincode, contours, cstar

N = 96


def _disk():
    m = np.zeros((N, N), bool)
    rr, cc = draw.disk((45.3, 50.7), 30, shape=m.shape)
    m[rr, cc] = True
    return m


def _ellipse():
    m = np.zeros((N, N), bool)
    rr, cc = draw.ellipse(47.2, 49.1, 20, 40, shape=m.shape, rotation=0.5)
    m[rr, cc] = True
    return m


def _star():
    ang = np.linspace(0, 2 * np.pi, 11)[:-1] + 0.3
    rad = np.where(np.arange(10) % 2 == 0, 42, 17)
    m = np.zeros((N, N), bool)
    rr, cc = draw.polygon(48 + rad * np.sin(ang), 48 + rad * np.cos(ang), m.shape)
    m[rr, cc] = True
    return m


def _thin():
    m = np.zeros((N, N), bool)
    rr, cc = draw.line(8, 8, 80, 90)
    m[rr, cc] = True
    m[15:85, 50] = True
    return m


def _border():
    m = np.zeros((N, N), bool)
    rr, cc = draw.disk((0, 0), 40, shape=m.shape)
    m[rr, cc] = True
    m[80:, :] = True
    return m


def _multi():
    m = np.zeros((N, N), bool)
    for r, c, rad in [(15, 15, 8), (25, 70, 14), (70, 30, 18), (80, 80, 5), (50, 50, 2)]:
        rr, cc = draw.disk((r, c), rad, shape=m.shape)
        m[rr, cc] = True
    m[3, 90] = True
    return m


def _horse():
    h = ~data.horse()
    s = 128 / max(h.shape)
    out = (int(h.shape[0] * s), int(h.shape[1] * s))
    return transform.resize(h.astype(float), out, order=1, anti_aliasing=True) > 0.5


SHAPES = {
    "disk": _disk, "ellipse": _ellipse, "star": _star, "thin": _thin,
    "border": _border, "multi": _multi, "horse": _horse,
}
SMOOTH = ("disk", "ellipse", "horse", "border")
MIN_IOU = {"thin": 0.3, "horse": 0.85, "star": 0.9, "multi": 0.9}


@pytest.fixture(scope="module")
def masks():
    return {k: f() for k, f in SHAPES.items()}


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def _roundtrip(m, params=None):
    b = cstar.encode_mask(m, params)
    d = cstar.decode_mask(b, m.shape)
    assert d.dtype == bool and d.shape == m.shape
    return b, d


@pytest.mark.parametrize("name", list(SHAPES))
def test_roundtrip_coverage_iou(masks, name):
    m = masks[name]
    b, d = _roundtrip(m)
    assert (d >= m).all(), "decoded mask must cover every object pixel"
    assert _iou(d, m) > MIN_IOU.get(name, 0.95)
    assert isinstance(b, bytes)


@pytest.mark.parametrize("name", SMOOTH)
def test_fewer_bits_than_freeman(masks, name):
    m = masks[name]
    b = cstar.encode_mask(m)
    f = chaincode.encode_mask(m)
    assert len(b) < (0.9 if name == "border" else 0.7) * len(f)
    nb = contours.boundary_pixels(m).sum()
    assert len(b) * 8 / nb < 1.3


@pytest.mark.parametrize("name", list(SHAPES))
def test_freeman_lossless(masks, name):
    m = masks[name]
    d = chaincode.decode_mask(chaincode.encode_mask(m), m.shape)
    assert np.array_equal(d, ndimage.binary_fill_holes(m))


def test_freeman_random_masks_lossless():
    rng = np.random.default_rng(0)
    for _ in range(40):
        m = ndimage.gaussian_filter(rng.random((30, 40)), rng.uniform(0.5, 2)) > 0.5
        d = chaincode.decode_mask(chaincode.encode_mask(m), m.shape)
        assert np.array_equal(d, ndimage.binary_fill_holes(m))


def test_random_masks_cover():
    rng = np.random.default_rng(1)
    for _ in range(12):
        m = ndimage.gaussian_filter(rng.random((40, 48)), rng.uniform(0.7, 3)) > 0.52
        d = cstar.decode_mask(cstar.encode_mask(m), m.shape)
        assert (d >= m).all()


# ----------------------------------------------------------------------------- module switches
def test_switch_angle_matching(masks):
    """Open-loop angle choice drifts: many more resets (bits), no better IoU."""
    off = replace(cstar.CStarParams(), angle_matching=False)
    iou0, iou1 = [], []
    for name in ("disk", "star", "horse"):
        m = masks[name]
        b1, d1 = _roundtrip(m)
        b0, d0 = _roundtrip(m, off)
        assert (d0 >= m).all()
        assert len(b0) > 1.5 * len(b1)
        iou0.append(_iou(d0, m))
        iou1.append(_iou(d1, m))
    assert np.mean(iou0) < np.mean(iou1) + 0.005


def test_switch_offset_adaptation(masks):
    """Without the corner alphabet, sharp corners are cut: worse IoU or more bits."""
    off = replace(cstar.CStarParams(), offset_adaptation=False)
    for name in ("star", "horse"):
        m = masks[name]
        b1, d1 = _roundtrip(m)
        b0, d0 = _roundtrip(m, off)
        assert (d0 >= m).all()
        assert _iou(d0, m) < _iou(d1, m) or len(b0) > len(b1)


def test_switch_global_resetting(masks):
    """Resetting bounds the drift of an open-loop chain: without it IoU collapses."""
    open_loop = replace(cstar.CStarParams(), angle_matching=False)
    no_reset = replace(open_loop, global_resetting=False)
    for name in ("star", "horse"):
        m = masks[name]
        _, d1 = _roundtrip(m, open_loop)
        _, d0 = _roundtrip(m, no_reset)
        assert (d0 >= m).all()  # dilation still guarantees coverage
        assert _iou(d0, m) < _iou(d1, m)


def test_switch_contour_dilation(masks):
    """Without dilation coverage is not guaranteed (and is < 1 on these shapes)."""
    off = replace(cstar.CStarParams(), contour_dilation=False)
    lost = 0
    for name in ("disk", "star", "horse", "multi"):
        m = masks[name]
        _, d1 = _roundtrip(m)
        _, d0 = _roundtrip(m, off)
        assert (d1 >= m).all()
        lost += (m & ~d0).sum() > 0
        assert (d0 <= d1).sum() >= d0.sum() * 0.95
    assert lost >= 3


def test_contour_level_and_params_roundtrip(masks):
    m = masks["star"]
    for p in (
        cstar.CStarParams(contour_level=0.35),
        cstar.CStarParams(n_directions=16, smooth_range=1, corner_range=8, step=3.0),
        cstar.CStarParams(step=6.0, corner_step=3.0, global_resetting=False),
    ):
        _, d = _roundtrip(m, p)
        assert (d >= m).all()


# ----------------------------------------------------------------------------- degenerate
@pytest.mark.parametrize(
    "make",
    [
        lambda: np.zeros((20, 30), bool),
        lambda: np.ones((20, 30), bool),
        lambda: np.ones((1, 1), bool),
        lambda: np.zeros((1, 1), bool),
        lambda: np.pad(np.ones((1, 1), bool), ((3, 9), (5, 2))),
        lambda: np.pad(np.ones((1, 15), bool), ((4, 4), (2, 2))),
        lambda: np.pad(np.ones((12, 1), bool), ((0, 0), (7, 0))),
        lambda: np.eye(17, dtype=bool),
        lambda: np.pad(np.ones((5, 30), bool), ((0, 10), (0, 0))),
        lambda: np.indices((9, 9)).sum(0) % 2 == 0,
        lambda: np.ones((3, 1), bool),
    ],
)
def test_degenerate(make):
    m = make()
    b, d = _roundtrip(m)
    assert (d >= m).all()
    if not m.any():
        assert not d.any()
    if m.all():
        assert d.all()
    if m.sum() == 1:
        assert np.array_equal(d, m)


def test_holes_are_covered():
    m = _disk()
    m[40:50, 45:55] = False
    _, d = _roundtrip(m)
    assert (d >= m).all()
    cs = contours.extract_contours(m, holes=True)
    assert len(cs) == 1 and len(cs[0][1]) == 1


def test_contours_extraction():
    m = _multi()
    cs = contours.extract_contours(m)
    assert len(cs) == len(contours.components(m)) == 6
    for outer, holes in cs:
        assert outer.ndim == 2 and outer.shape[1] == 2 and holes == []


# ----------------------------------------------------------------------------- label maps
def test_label_map_roundtrip_overlap_rule():
    lab = np.zeros((64, 64), np.int64)
    rr, cc = draw.disk((30, 30), 20, shape=lab.shape)
    lab[rr, cc] = 1
    rr, cc = draw.disk((35, 40), 14, shape=lab.shape)
    lab[rr, cc] = 2
    lab[50:60, 5:60] = 4  # region 3 is empty
    b = cstar.encode_label_map(lab)
    out = cstar.decode_label_map(b, lab.shape)
    masks = cstar.decode_label_masks(b, lab.shape)
    assert out.shape == lab.shape and len(masks) == 4
    assert not masks[2].any()
    expect = np.zeros_like(out)
    for i, m in enumerate(masks, start=1):
        assert (m >= (lab == i)).all()  # every decoded mask covers its region
        expect[m] = i  # last region wins
    assert np.array_equal(out, expect)
    assert np.array_equal(out == 4, masks[3])
    assert (out[lab == 4] == 4).all()  # the last region keeps all its pixels
    assert (out[lab > 0] > 0).all()
    assert (out == lab).mean() > 0.95


def test_label_map_empty():
    lab = np.zeros((10, 12), np.int32)
    out = cstar.decode_label_map(cstar.encode_label_map(lab), lab.shape)
    assert out.shape == lab.shape and not out.any()


# ----------------------------------------------------------------------------- corruption
def _decode_or_error(fn, b, shape):
    try:
        d = fn(b, shape)
    except cstar.CStarError:
        return None
    assert d.shape == tuple(shape)
    return d


def test_corruption(masks):
    rng = np.random.default_rng(3)
    t0 = time.time()
    m = transform.resize(masks["multi"].astype(float), (48, 48)) > 0.5
    lab = m.astype(np.int32) + (masks["star"][:48, :48] * 2)
    cases = [
        (cstar.encode_mask(m), cstar.decode_mask, m.shape, bool),
        (cstar.encode_mask(masks["thin"][:64, :64]), cstar.decode_mask, (64, 64), bool),
        (cstar.encode_label_map(lab), cstar.decode_label_map, lab.shape, np.int32),
    ]
    n_err = 0
    for b, fn, shape, dtype in cases:
        for k in range(len(b)):  # every truncation
            d = _decode_or_error(fn, b[:k], shape)
            n_err += d is None
            assert d is None or d.dtype == dtype
        for _ in range(60):  # random byte changes
            bb = bytearray(b)
            for _ in range(rng.integers(1, 4)):
                bb[rng.integers(len(bb))] = rng.integers(256)
            d = _decode_or_error(fn, bytes(bb), shape)
            assert d is None or d.dtype == dtype
        for n in (1, 3, 50):  # pure noise
            _decode_or_error(fn, rng.integers(0, 256, n, dtype=np.uint8).tobytes(), shape)
    assert n_err > 0
    assert time.time() - t0 < 30


def test_zeros_and_ones_streams():
    for b in (b"", b"\0" * 64, b"\xff" * 64):
        _decode_or_error(cstar.decode_mask, b, (32, 32))
    with pytest.raises(cstar.CStarError):
        cstar.decode_mask(b"\0" * 64, (32, 32))
    assert issubclass(cstar.CStarError, ValueError)


def test_bad_arguments():
    with pytest.raises(ValueError):
        cstar.encode_mask(np.zeros((3, 3, 3), bool))
    with pytest.raises(ValueError):
        cstar.decode_mask(b"", (0, 5))
    with pytest.raises(ValueError):
        cstar.encode_mask(np.zeros((4, 4), bool), cstar.CStarParams(n_directions=12))
