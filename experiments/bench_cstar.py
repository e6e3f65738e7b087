"""Benchmark C* contour coding: bits vs fidelity, module ablations, Freeman baseline.

    python experiments/bench_cstar.py [--size 128] [--out runs/cstar/table.md] [--before REV]

Prints a markdown table (per shape: bits, bits per boundary pixel, IoU and coverage of the
decoded mask) for full C*, each of its four modules switched off, and the lossless
differential Freeman chain code; writes the same table to ``--out``. ``--before REV``
(a git revision) also codes every shape with full C* as ``moric_jax/regions/cstar.py`` was
at REV (read with ``git show``, imported from a temporary file; the working tree is not
touched) and adds a before/after table, with bits per *inside* boundary pixel (boundary
pixels whose outside neighbour is inside the image, i.e. not counting the frame).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import data, draw, transform

from moric_jax.regions import chaincode, contours, cstar


def shapes(n: int) -> dict[str, np.ndarray]:
    """Synthetic test masks (n x n) plus the skimage horse silhouette scaled to <= n px."""
    def new():
        return np.zeros((n, n), bool)

    out = {}
    m = new()
    m[draw.disk((0.47 * n, 0.51 * n), 0.31 * n, shape=m.shape)] = True
    out["disk"] = m
    m = new()
    m[draw.ellipse(0.47 * n, 0.52 * n, 0.2 * n, 0.4 * n, shape=m.shape, rotation=0.5)] = True
    out["ellipse"] = m
    ang = np.linspace(0, 2 * np.pi, 11)[:-1] + 0.3
    rad = np.where(np.arange(10) % 2 == 0, 0.41 * n, 0.17 * n)
    m = new()
    m[draw.polygon(n / 2 + rad * np.sin(ang), n / 2 + rad * np.cos(ang), m.shape)] = True
    out["star"] = m
    m = new()
    m[draw.line(n // 12, n // 12, 3 * n // 4, 9 * n // 10)] = True
    m[n // 6:7 * n // 8, n // 2] = True
    out["thin"] = m
    m = new()
    m[draw.disk((0, 0), 0.4 * n, shape=m.shape)] = True
    m[int(0.8 * n):, :] = True
    out["border"] = m
    m = new()  # border cases: a disk cut by the top border, one touching two borders, a
    m[draw.disk((0.11 * n, 0.51 * n), 0.31 * n, shape=m.shape)] = True  # quarter disk in a
    out["cut"] = m  # corner, a full-width band
    m = new()
    m[draw.disk((0.13 * n, 0.89 * n), 0.29 * n, shape=m.shape)] = True
    out["two"] = m
    m = new()
    m[draw.disk((0, 0), 0.42 * n, shape=m.shape)] = True
    out["corner"] = m
    m = new()
    m[int(0.31 * n):int(0.62 * n), :] = True
    out["band"] = m
    m = new()
    for r, c, rr in [(.15, .15, .08), (.25, .7, .14), (.7, .3, .18), (.8, .8, .05), (.5, .5, .02)]:
        m[draw.disk((r * n, c * n), rr * n, shape=m.shape)] = True
    m[3, n - 5] = True
    out["multi"] = m
    h = ~data.horse()
    s = n / max(h.shape)
    size = (int(h.shape[0] * s), int(h.shape[1] * s))
    out["horse"] = transform.resize(h.astype(float), size, order=1, anti_aliasing=True) > 0.5
    return out


def variants() -> dict[str, cstar.CStarParams]:
    p = cstar.CStarParams()
    return {
        "C* full": p,
        "C* - angle matching": replace(p, angle_matching=False),
        "C* - global resetting": replace(p, global_resetting=False),
        "C* - offset adaptation": replace(p, offset_adaptation=False),
        "C* - contour dilation": replace(p, contour_dilation=False),
        "C* - angle matching - global resetting": replace(
            p, angle_matching=False, global_resetting=False),
    }


def inside_boundary_pixels(m: np.ndarray) -> int:
    """Boundary pixels of the hole-filled mask with a 4-neighbour outside it inside the
    image (the image border does not count as outside)."""
    f = ndimage.binary_fill_holes(m)
    return int((f & ~ndimage.binary_erosion(np.pad(f, 1, mode="edge"))[1:-1, 1:-1]).sum())


def load_before(rev: str):
    """``moric_jax/regions/cstar.py`` at git revision ``rev``, imported as a module of the
    ``moric_jax.regions`` package (so its relative imports work)."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(["git", "show", f"{rev}:moric_jax/regions/cstar.py"], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "cstar_before.py"
    path.write_text(src)
    name = "moric_jax.regions._cstar_before"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _measure(enc, dec, m):
    t = time.perf_counter()
    b = enc(m)
    d = dec(b, m.shape)
    dt = time.perf_counter() - t
    iou = float((d & m).sum() / max((d | m).sum(), 1))
    cov = float((d & m).sum() / max(m.sum(), 1))
    return 8 * len(b), iou, cov, dt


def before_after(size: int, before, rev: str) -> str:
    """Full C* before (``before`` module, at ``rev``) and after, per shape and in total."""
    rows = [f"C* before ({rev}) / after, full C*, {size}px masks; in-bpx = boundary pixels "
            "not on the frame.", "",
            "| shape | bpx | in-bpx | bits before | bits after | after/before | bits/in-bpx "
            "before | after | IoU before | after | coverage before | after |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    tot = np.zeros(3)
    for sname, m in shapes(size).items():
        nb, ni = int(contours.boundary_pixels(m).sum()), inside_boundary_pixels(m)
        b0, i0, c0, _ = _measure(before.encode_mask, before.decode_mask, m)
        b1, i1, c1, _ = _measure(cstar.encode_mask, cstar.decode_mask, m)
        tot += (b0, b1, ni)
        rows.append(f"| {sname} | {nb} | {ni} | {b0} | {b1} | {b1 / b0:.2f} | "
                    f"{b0 / max(ni, 1):.3f} | {b1 / max(ni, 1):.3f} | {i0:.4f} | {i1:.4f} | "
                    f"{c0:.4f} | {c1:.4f} |")
    rows.append(f"| all | | {int(tot[2])} | {int(tot[0])} | {int(tot[1])} | "
                f"{tot[1] / tot[0]:.2f} | {tot[0] / tot[2]:.3f} | {tot[1] / tot[2]:.3f} | "
                "| | | |")
    return "\n".join(rows) + "\n"


def run(size: int) -> str:
    rows = []
    totals: dict[str, list] = {}
    for sname, m in shapes(size).items():
        nb = int(contours.boundary_pixels(m).sum())
        codecs = {k: (lambda x, p=p: cstar.encode_mask(x, p), cstar.decode_mask)
                  for k, p in variants().items()}
        codecs["Freeman (lossless)"] = (chaincode.encode_mask, chaincode.decode_mask)
        for vname, (enc, dec) in codecs.items():
            bits, iou, cov, dt = _measure(enc, dec, m)
            rows.append(f"| {sname} | {vname} | {bits} | {bits / nb:.3f} | {iou:.4f} | "
                        f"{cov:.4f} | {dt * 1e3:.0f} |")
            totals.setdefault(vname, []).append((bits, nb, iou, cov))
    head = [f"C* contour coding, {size}px masks; bits = 8*len(bytes) (whole stream);",
            "bits/bpx = bits per boundary pixel of the hole-filled mask; IoU and coverage of the",
            "decoded mask vs the true mask; ms = encode+decode time.", "",
            "| shape | method | bits | bits/bpx | IoU | coverage | ms |",
            "|---|---|---:|---:|---:|---:|---:|"]
    summary = ["", "| method (all shapes) | total bits | bits/bpx | mean IoU | min coverage |",
               "|---|---:|---:|---:|---:|"]
    for vname, tv in totals.items():
        a = np.array(tv, dtype=float)
        summary.append(f"| {vname} | {int(a[:, 0].sum())} | {a[:, 0].sum() / a[:, 1].sum():.3f} |"
                       f" {a[:, 2].mean():.4f} | {a[:, 3].min():.4f} |")
    return "\n".join(head + rows + summary) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="image side in pixels")
    ap.add_argument("--out", default="runs/cstar/table.md", help="markdown output ('' = none)")
    ap.add_argument("--before", default="", help="git revision to compare full C* with")
    args = ap.parse_args()
    table = run(args.size)
    if args.before:
        table += "\n" + before_after(args.size, load_before(args.before), args.before)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
