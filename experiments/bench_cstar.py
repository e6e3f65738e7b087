"""Benchmark C* contour coding: bits vs fidelity, module ablations, Freeman baseline.

    python experiments/bench_cstar.py [--size 128] [--out runs/cstar/table.md]

Prints a markdown table (per shape: bits, bits per boundary pixel, IoU and coverage of the
decoded mask) for full C*, each of its four modules switched off, and the lossless
differential Freeman chain code; writes the same table to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
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


def run(size: int) -> str:
    rows = []
    totals: dict[str, list] = {}
    for sname, m in shapes(size).items():
        nb = int(contours.boundary_pixels(m).sum())
        codecs = {k: (lambda x, p=p: cstar.encode_mask(x, p), cstar.decode_mask)
                  for k, p in variants().items()}
        codecs["Freeman (lossless)"] = (chaincode.encode_mask, chaincode.decode_mask)
        for vname, (enc, dec) in codecs.items():
            t = time.perf_counter()
            b = enc(m)
            d = dec(b, m.shape)
            dt = time.perf_counter() - t
            bits = 8 * len(b)
            iou = float((d & m).sum() / max((d | m).sum(), 1))
            cov = float((d & m).sum() / max(m.sum(), 1))
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
    args = ap.parse_args()
    table = run(args.size)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
