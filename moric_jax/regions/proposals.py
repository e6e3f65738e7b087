"""Automatic region proposals for MoRIC (NumPy + scikit-image, no JAX).

:func:`propose_regions` splits an image into at most ``num_regions`` regions (background
included) whose contours are cheap to code with C* (:mod:`moric_jax.regions.cstar`).

Method ``"ward"`` (default; deterministic, ``seed`` is not used):

1. work on a copy whose longer side is at most ``WORK_SIDE`` px (anti-aliased resize);
2. SLIC superpixels on CIELAB colour (about one per 100 px of the working copy, 16..400);
3. per-pixel features: L, a, b and local contrast (std of L in a 5x5 window, weighted
   ``TEXTURE_WEIGHT``), averaged per superpixel;
4. agglomerative merging of ADJACENT superpixels with Ward's criterion (the merge that
   least increases the within-group sum of squared feature distances, so small fragments
   go first) down to ``num_regions`` groups; then adjacent groups whose mean features
   differ by less than ``MERGE_TOL`` (Lab units, about a just-noticeable colour
   difference) are merged as well, so a flat image ends as one group (all background);
5. boundary refinement: each pixel moves to the group with the nearest mean colour
   (Lab, smoothed with sigma 1 px) among the groups within 3 px (superpixel edges are
   only roughly on the object edges); then, with the refined groups' own means, groups
   closer than ``MERGE_TOL`` are merged again (edge superpixels had blurred the means);
6. background = the group with the most pixels on the image border (ties: the larger);
   every other group is an object: holes filled, 8-connected components smaller than
   ``min_area_fraction`` of the image dropped (they go to the background), the mask
   smoothed (Gaussian, ``SMOOTH_SIGMA``, threshold 0.5) and scaled back to full size
   (bilinear, threshold 0.5): smooth contours are cheap for C*;
7. objects are numbered ``1..M`` by decreasing hole-filled area, so an object enclosing
   another comes first and the enclosed one, painted after it, stays visible (the C*
   overlap rule: a pixel belongs to the last region covering it). An object left with
   fewer than ``min_area_fraction`` visible pixels after painting is dropped.

Method ``"kmeans"``: step 4 is replaced by weighted k-means of the superpixel features
into ``num_regions`` clusters (k-means++ seeding from ``seed``, best of 4 runs), followed
by the same ``MERGE_TOL`` merging (of any two clusters, adjacent or not). Clusters need not be connected: similar textures in
different places share one region (and one LSN).

Cost: about 0.2-0.5 s for a 768x512 image on a busy 2-core CPU (working copy 256x171).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import color, segmentation, transform

from moric_jax.image_io import validate_image
from moric_jax.regions.masks import MAX_REGIONS

WORK_SIDE = 256  # longer side of the working copy, px
MERGE_TOL = 5.0  # groups closer than this (Lab + texture units) are always merged
TEXTURE_WEIGHT = 0.5  # weight of the local std of L among the features
SMOOTH_SIGMA = 1.0  # Gaussian smoothing of object masks (working-copy px) before threshold
_PIXELS_PER_SEGMENT = 100
_METHODS = ("ward", "kmeans")


def propose_regions(image: np.ndarray, num_regions: int, seed: int = 0,
                    min_area_fraction: float = 0.02, method: str = "ward") -> np.ndarray:
  """Proposes a region label map for ``image``.

  Args:
    image: ``(H, W, 3)`` float in ``[0, 1]`` (uint8 and ``(H, W)`` grey also accepted).
    num_regions: the most regions to return, background included (1..MAX_REGIONS).
    seed: random seed of the ``"kmeans"`` method (``"ward"`` is deterministic anyway).
    min_area_fraction: objects' connected components smaller than this fraction of the
      image are dropped (given to the background).
    method: ``"ward"`` or ``"kmeans"`` (see the module docstring).

  Returns:
    ``(H, W) int32`` label map with labels ``0..M`` (contiguous), ``M <= num_regions - 1``,
    0 = background, objects by decreasing area. All zeros when nothing stands out (flat
    image, ``num_regions < 2``): the caller then codes one region.
  """
  img = validate_image(image)
  if method not in _METHODS:
    raise ValueError(f"unknown proposal method {method!r}; expected one of {_METHODS}")
  if isinstance(num_regions, bool) or not isinstance(num_regions, (int, np.integer)):
    raise ValueError(f"num_regions must be an integer, got {num_regions!r}")
  if not 1 <= num_regions <= MAX_REGIONS:
    raise ValueError(f"num_regions must be in 1..{MAX_REGIONS}, got {num_regions}")
  if not 0.0 <= min_area_fraction < 1.0:
    raise ValueError(f"min_area_fraction must be in [0, 1), got {min_area_fraction}")
  H, W = img.shape[:2]
  out = np.zeros((H, W), np.int32)
  flat = float(np.ptp(img.reshape(-1, 3), axis=0).max()) < 2.0 / 255.0
  if num_regions < 2 or flat or H * W < 4:
    return out

  work = _working_copy(img)
  seg, feats = _superpixels(work)
  S = int(seg.max()) + 1
  n, sums = _stats(seg, S, feats)
  if method == "ward":
    owner = _agglomerate(n, sums, _adjacency(seg, S), num_regions, MERGE_TOL)
  else:
    assign = _kmeans(n, sums / n[:, None], num_regions, seed)
    G = int(assign.max()) + 1
    ng = np.bincount(assign, weights=n, minlength=G)
    sg = np.stack([np.bincount(assign, weights=sums[:, c], minlength=G)
                   for c in range(sums.shape[1])], axis=1)
    owner = _agglomerate(ng, sg, np.ones((G, G), bool), num_regions, MERGE_TOL)[assign]
  grp = np.unique(_refine(owner[seg], feats), return_inverse=True)[1].reshape(seg.shape)
  # superpixels straddling an edge blur group means; with the refined pixels' own means,
  # groups that are really alike (e.g. two halves of one object) are merged now
  G = int(grp.max()) + 1
  n, sums = _stats(grp, G, feats)
  adj = _adjacency(grp, G) if method == "ward" else np.ones((G, G), bool)
  grp = _agglomerate(n, sums, adj, G, MERGE_TOL)[grp]
  objects = _objects(grp, min_area_fraction)

  min_px = max(1.0, min_area_fraction * H * W)
  for i, m in enumerate(objects, start=1):
    if m.shape != (H, W):
      m = transform.resize(m.astype(np.float32), (H, W), order=1, mode="edge",
                           anti_aliasing=False) > 0.5
    out[m] = i
  present = np.bincount(out.ravel(), minlength=len(objects) + 1)
  lut = np.zeros(len(objects) + 1, np.int32)
  keep = [i for i in range(1, len(objects) + 1) if present[i] >= min_px]
  lut[keep] = np.arange(1, len(keep) + 1, dtype=np.int32)
  return lut[out]


def _working_copy(img: np.ndarray) -> np.ndarray:
  """The image resized so that its longer side is at most ``WORK_SIDE`` px."""
  H, W = img.shape[:2]
  if max(H, W) <= WORK_SIDE:
    return img.astype(np.float64)
  s = WORK_SIDE / max(H, W)
  shape = (max(1, round(H * s)), max(1, round(W * s)), 3)
  return np.clip(transform.resize(img, shape, order=1, anti_aliasing=True), 0.0, 1.0)


def _superpixels(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """SLIC superpixels ``(h, w)`` int (contiguous ids from 0) and pixel features ``(h, w, 4)``."""
  h, w = work.shape[:2]
  lab = color.rgb2lab(work)
  L = lab[..., 0]
  mean = ndimage.uniform_filter(L, 5, mode="reflect")
  var = ndimage.uniform_filter(L * L, 5, mode="reflect") - mean * mean
  texture = TEXTURE_WEIGHT * np.sqrt(np.maximum(var, 0.0))
  feats = np.concatenate([lab, texture[..., None]], axis=-1)
  n_seg = int(np.clip(h * w // _PIXELS_PER_SEGMENT, 16, 400))
  # slic min-max rescales its input to [0, 1] first, so it must get RGB and convert to Lab
  # itself (giving it Lab would shrink colour distances ~100x against the spatial term).
  seg = segmentation.slic(work, n_segments=n_seg, compactness=10.0, sigma=0.5, start_label=0,
                          convert2lab=True, channel_axis=-1, enforce_connectivity=True)
  _, seg = np.unique(seg, return_inverse=True)
  return seg.reshape(h, w), feats


def _stats(seg: np.ndarray, S: int, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pixel counts ``(S,)`` and feature sums ``(S, d)`` of the ``S`` labels of ``seg``."""
  flat = seg.ravel()
  n = np.bincount(flat, minlength=S).astype(np.float64)
  sums = np.stack([np.bincount(flat, weights=feats[..., c].ravel(), minlength=S)
                   for c in range(feats.shape[-1])], axis=1)
  return n, sums


def _adjacency(seg: np.ndarray, S: int) -> np.ndarray:
  """``(S, S)`` bool: superpixels sharing a horizontal or vertical pixel edge."""
  adj = np.zeros((S, S), bool)
  for a, b in ((seg[:, :-1], seg[:, 1:]), (seg[:-1], seg[1:])):
    d = a != b
    adj[a[d], b[d]] = True
  return adj | adj.T


def _agglomerate(n: np.ndarray, sums: np.ndarray, adj: np.ndarray, target: int,
                 tol: float) -> np.ndarray:
  """Greedy merging of adjacent items (``n`` pixel counts ``(S,)``, feature ``sums``
  ``(S, d)``): Ward's criterion while there are more than ``target`` groups, then any
  adjacent pair with mean distance below ``tol``. Returns each item's group ``(S,)``,
  contiguous ids from 0."""
  S = len(n)
  n = np.asarray(n, np.float64).copy()
  sums = np.asarray(sums, np.float64).copy()
  mu = sums / n[:, None]
  adj = adj.copy()
  np.fill_diagonal(adj, False)
  d2 = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
  ward = n[:, None] * n[None, :] / (n[:, None] + n[None, :]) * d2
  D = np.where(adj, d2, np.inf)
  Wm = np.where(adj, ward, np.inf)
  owner = np.arange(S)
  groups, tol2 = S, tol * tol
  while groups > 1:
    k = int(np.argmin(Wm if groups > target else D))
    i, j = sorted(divmod(k, S))
    if not np.isfinite(D[i, j]) or (groups <= target and D[i, j] >= tol2):
      break
    n[i] += n[j]
    sums[i] += sums[j]
    mu[i] = sums[i] / n[i]
    adj[i] |= adj[j]
    adj[:, i] |= adj[:, j]
    adj[i, i] = False
    adj[j, :] = False
    adj[:, j] = False
    owner[owner == j] = i
    di = ((mu - mu[i]) ** 2).sum(1)
    wi = n * n[i] / (n + n[i]) * di
    D[i, :] = D[:, i] = np.where(adj[i], di, np.inf)
    Wm[i, :] = Wm[:, i] = np.where(adj[i], wi, np.inf)
    D[j, :] = D[:, j] = np.inf
    Wm[j, :] = Wm[:, j] = np.inf
    groups -= 1
  return np.unique(owner, return_inverse=True)[1].reshape(S)


def _kmeans(n: np.ndarray, x: np.ndarray, k: int, seed: int, restarts: int = 4,
            iters: int = 50) -> np.ndarray:
  """Weighted k-means of points ``x`` ``(S, d)`` with weights ``n`` ``(S,)``, k-means++
  seeding; the best of ``restarts`` runs. Returns cluster ids ``(S,)``, contiguous from 0."""
  rng = np.random.default_rng(seed)
  S = len(x)
  k = min(k, S)
  best = None
  for _ in range(restarts):
    centres = [x[rng.choice(S, p=n / n.sum())]]
    for _ in range(1, k):
      d = ((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1).min(1)
      p = n * d
      if p.sum() <= 0:
        break
      centres.append(x[rng.choice(S, p=p / p.sum())])
    c = np.array(centres)
    for _ in range(iters):
      dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
      a = dist.argmin(1)
      wsum = np.bincount(a, weights=n, minlength=len(c))
      new = np.stack([np.bincount(a, weights=n * x[:, j], minlength=len(c))
                      for j in range(x.shape[1])], axis=1)
      new = np.where(wsum[:, None] > 0, new / np.maximum(wsum, 1e-12)[:, None], c)
      if np.allclose(new, c):
        break
      c = new
    dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    a = dist.argmin(1)
    inertia = float((n * dist[np.arange(S), a]).sum())
    if best is None or inertia < best[0]:
      best = (inertia, a)
  return np.unique(best[1], return_inverse=True)[1].reshape(S)


def _objects(grp: np.ndarray, min_area_fraction: float) -> list[np.ndarray]:
  """Object masks ``(h, w)`` bool from a group map: every group but the background one,
  holes filled, small components dropped, smoothed; sorted by decreasing area."""
  h, w = grp.shape
  G = int(grp.max()) + 1
  if G < 2:
    return []
  border = np.concatenate([grp[0], grp[-1], grp[:, 0], grp[:, -1]])
  on_border = np.bincount(border, minlength=G)
  area = np.bincount(grp.ravel(), minlength=G)
  bg = max(range(G), key=lambda g: (on_border[g], area[g], -g))
  min_px = max(1.0, min_area_fraction * h * w)
  eight = np.ones((3, 3), bool)
  found = []
  for g in range(G):
    if g == bg:
      continue
    m = ndimage.binary_fill_holes(grp == g)
    comp, nc = ndimage.label(m, structure=eight)
    sizes = np.bincount(comp.ravel(), minlength=nc + 1)
    keep = np.flatnonzero(sizes[1:] >= min_px) + 1
    if keep.size:
      m = ndimage.gaussian_filter(np.isin(comp, keep).astype(np.float32), SMOOTH_SIGMA) > 0.5
      if m.any():
        found.append((int(m.sum()), g, m))
  found.sort(key=lambda t: (-t[0], t[1]))
  return [m for _, _, m in found]


def _refine(grp: np.ndarray, feats: np.ndarray, radius: int = 3) -> np.ndarray:
  """Pixel-level boundary refinement: each pixel goes to the group with the nearest mean
  (Lab) among the groups present within ``radius`` px; features smoothed (sigma 1 px)."""
  G = int(grp.max()) + 1
  if G < 2:
    return grp
  lab = ndimage.gaussian_filter(feats[..., :3], sigma=(1.0, 1.0, 0.0))
  flat = grp.ravel()
  n = np.bincount(flat, minlength=G)
  mu = np.stack([np.bincount(flat, weights=lab[..., c].ravel(), minlength=G)
                 for c in range(3)], axis=1) / np.maximum(n, 1)[:, None]
  disk = np.ones((2 * radius + 1, 2 * radius + 1), bool)
  best = np.full(grp.shape, np.inf)
  out = grp.copy()
  for g in range(G):
    near = ndimage.binary_dilation(grp == g, structure=disk)
    d = ((lab - mu[g]) ** 2).sum(-1)
    better = near & (d < best)
    best[better] = d[better]
    out[better] = g
  return out
