"""The RD sweep: every (image, lambda) of a config encoded to a real file, as jobs.

``make_jobs`` turns a sweep config into ``launch.Job`` s: one per image with its
lambdas trained together (``batch_lmbdas=True``: one program, no resume mid-training)
or one per (image, lambda) (``batch_lmbdas=False``: each resumes from its own orbax
checkpoint under ``<out>/ckpt/<row key>/``). ``run_job`` is the work function the
jobs run; ``collect`` merges the job files into ``results.csv`` and writes
``baselines.csv``, ``results.md``, ``rd.png`` and ``bd.json``.

Output directory layout::

  sweep.json            what was launched (config, images, lambdas, config hash)
  jobs/<key>.json       one finished row per file (written by the job)
  files/*.moric         the real files
  ckpt/<key>/           orbax checkpoints of unfinished encodes
  submitit/             job pickles and logs (local/slurm launchers)
  results.csv           all rows (written only by ``collect``/``launch.merge_rows``)
  baselines.csv, results.md, rd.png, bd.json

This module imports JAX only inside ``run_job`` / ``collect`` so that submitting a
sweep does not initialise an accelerator on the submitting machine.
"""
from __future__ import annotations

import glob
import json
import time
from pathlib import Path
from typing import Callable

import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.eval import report
from moric_jax.sweeps import launch

FIELDS = list(report.FIELDS)   # a row is the encode's report, flat (eval/report.py)
BASELINE_FIELDS = ["image", "codec", "quality", "num_bytes", "bpp", "psnr", "ms_ssim"]
WORK_FN = "moric_jax.sweeps.rd:run_job"


def expand_images(spec: str) -> list[str]:
  """A glob or comma-separated list of paths -> sorted unique existing paths."""
  paths = []
  for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
    matches = sorted(glob.glob(part))
    if not matches:
      raise FileNotFoundError(f"no image matches {part!r}")
    paths.extend(matches)
  return list(dict.fromkeys(paths))


def config_hash(config) -> str:
  """The sweep's config hash: its codec fields and the crop (what one encode
  computes), not the images, lambdas, tables or launcher."""
  return report.config_hash(dict(codec_config(config), crop=int(config.sweep.crop)))


git_commit = report.git_commit


def load_crop(path: str, crop: int, max_pixels: int) -> np.ndarray:
  """``(H, W, 3) float32`` image, centre-cropped to ``crop`` x ``crop`` (0 = whole)."""
  return image_io.centre_crop(image_io.load_image(path, max_pixels=max_pixels), crop)


def row_key(image: str, lmbda, chash: str) -> str:
  return f"{image}__{chash}__lmbda{float(lmbda):.6g}"


def key_of(row: dict) -> str:
  return row_key(row["image"], row["lmbda"], row["config_hash"])


def lmbdas_of(config) -> list[float]:
  return [float(x) for x in config.sweep.lmbdas]


def codec_config(config) -> dict:
  """The config a job trains with: the sweep config less its ``sweep`` and ``launch``
  sub-dicts (what to run and how to launch it)."""
  return {k: v for k, v in config.to_dict().items() if k not in ("sweep", "launch")}


def sweep_fields(plan_config: dict) -> dict:
  """The ``sweep`` sub-dict of a ``sweep.json`` config (a sweep written before the
  codec, sweep and launch fields were apart kept them at the top)."""
  return plan_config.get("sweep", plan_config)


def write_plan(config, out: Path, images: list[str]) -> dict:
  """Records what this sweep launches (``sweep.json``; read by ``collect``)."""
  plan = {"config": config.to_dict(), "images": images, "lmbdas": lmbdas_of(config),
          "config_hash": config_hash(config), "git_commit": git_commit(),
          "launched": time.strftime("%Y-%m-%d %H:%M:%S")}
  image_io.atomic_write_bytes(out / "sweep.json",
                              json.dumps(plan, indent=1, default=str).encode())
  return plan


def coded_shape(path: str, crop: int) -> tuple[int, int]:
  """``(H, W)`` of the image a sweep codes from ``path`` (after the centre crop),
  read from the file's header."""
  from PIL import Image
  with Image.open(path) as im:
    w, h = im.size
  return (min(crop, h, w),) * 2 if crop else (h, w)


def make_jobs(config, images: list[str], done: set[str], chash: str, commit: str
              ) -> list[launch.Job]:
  """Jobs for the rows not in ``done`` (keys): per image (batched) or per row.

  With ``batch_lmbdas`` and ``batch_images=N > 1``, images of one coded shape that
  still need the same lambdas share a job of up to ``N`` images, trained as one
  image x lambda stack (``train.batched.compress_images_batched``).
  """
  cfg = codec_config(config)
  sw = config.sweep
  crop = int(sw.crop)
  jobs = []
  groups: dict[tuple, list[str]] = {}
  for path in images:
    name = Path(path).stem
    todo = [l for l in lmbdas_of(config) if row_key(name, l, chash) not in done]
    if not todo:
      continue
    args = {"path": str(Path(path).absolute()), "name": name, "config": cfg,
            "crop": crop, "chash": chash, "commit": commit}
    if sw.batch_lmbdas and int(sw.batch_images) > 1:
      shape = coded_shape(path, crop)
      groups.setdefault((shape, tuple(todo)), []).append(path)
    elif sw.batch_lmbdas and len(todo) > 1:
      jobs.append(launch.Job(f"{name}__{chash}", WORK_FN, dict(args, lmbdas=todo),
                             int(config.num_steps)))
    else:
      jobs.extend(launch.Job(row_key(name, l, chash), WORK_FN, dict(args, lmbdas=[l]),
                             int(config.num_steps)) for l in todo)
  cap = int(sw.batch_images)
  for (_, todo), paths in groups.items():
    for k in range(0, len(paths), cap):
      part = paths[k:k + cap]
      names = [Path(p).stem for p in part]
      label = names[0] if len(part) == 1 else f"{names[0]}+{len(part) - 1}"
      jobs.append(launch.Job(f"{label}__{chash}", WORK_FN, {
          "paths": [str(Path(p).absolute()) for p in part], "names": names,
          "config": cfg, "crop": crop, "chash": chash, "commit": commit,
          "lmbdas": list(todo)},
          int(config.num_steps)))
  return jobs


def result_row(name, image, info, config, chash, commit, encode_seconds) -> dict:
  """One encode's row (``eval/report.py`` fields) from ``api.package``'s ``info``."""
  rep = report.build(info, config, image=name, target=image_io.to_uint8(image),
                     encode_seconds=encode_seconds, chash=chash, commit=commit,
                     lmbda=float(info["lmbda"]))
  return report.row(rep)


def run_job(args: dict, ctx: launch.JobContext) -> None:
  """Work function of one job: encodes ``args["path"]`` at ``args["lmbdas"]``.

  Writes ``files/<image>_lmbda<l>.moric`` and one row per lambda (``ctx.emit``).
  A single-lambda job trains with an orbax checkpoint directory of its own and
  resumes from it when rerun or requeued.
  """
  from moric_jax import api

  if "paths" in args:
    _run_image_batch(args, ctx)
    return
  config = ml_collections.ConfigDict(args["config"])
  name, chash, commit = args["name"], args["chash"], args["commit"]
  image = load_crop(args["path"], int(args["crop"]), int(config.max_pixels))
  lmbdas = [float(l) for l in args["lmbdas"]]
  total = int(config.num_steps)
  encoded = []   # (lmbda, file bytes, info, encode seconds)
  if len(lmbdas) > 1:
    from moric_jax.train.batched import compress_image_batched
    desc = f"{name} x{len(lmbdas)} lambdas"
    t0 = time.perf_counter()
    results = compress_image_batched(
        image, config, lmbdas, on_chunk=lambda d, t: ctx.progress(d, t, desc))
    ctx.close_bar()
    per = (time.perf_counter() - t0) / len(lmbdas)
    encoded = [(lmbda, *packaged(image, result, config, lmbda, per))
               for lmbda, result in zip(lmbdas, results)]
  else:
    lmbda = lmbdas[0]
    key = row_key(name, lmbda, chash)
    cfg = config.copy_and_resolve_references()
    cfg.lmbda = lmbda
    root = config.checkpoint.dir
    cfg.checkpoint.dir = (str(Path(root) / launch.safe_name(key)) if root
                          else ctx.checkpoint_dir(key))
    desc = f"{name} lambda={lmbda:g}"

    def on_chunk(s):
      ctx.progress(s.step, total, desc, ckpt_dir=cfg.checkpoint.dir,
                   psnr=f"{s.psnr:.2f}", bpp=f"{s.bpp:.4f}")

    data, info = api.encode(image, cfg, on_chunk=on_chunk)
    ctx.close_bar()
    info["lmbda"] = lmbda
    encoded.append((lmbda, data, info, info["encode_seconds"]))
  for lmbda, data, info, secs in encoded:
    _emit(ctx, name, image, lmbda, config, chash, commit, data, info, secs)


def packaged(image, result, config, lmbda: float, train_share: float):
  """``(file bytes, info, encode seconds)`` of one trained result of a batch: its
  share of the batch's training plus its own packaging."""
  from moric_jax import api
  cfg = config.copy_and_resolve_references()
  cfg.lmbda = lmbda
  t1 = time.perf_counter()
  data, info = api.package(image, result, cfg)
  info["lmbda"] = lmbda
  return data, info, train_share + time.perf_counter() - t1


def _emit(ctx, name, image, lmbda, config, chash, commit, data, info, secs) -> None:
  """Writes one encode's file and its row (``ctx.emit``), and prints the row."""
  image_io.atomic_write_bytes(ctx.out_dir / "files" / f"{name}_lmbda{lmbda:g}.moric", data)
  row = result_row(name, image, info, config, chash, commit, secs)
  ctx.emit(row_key(name, lmbda, chash), row)
  print(f"  {name} lambda={lmbda:g}: {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB, "
        f"encode {secs:.1f} s, decode {row['decode_seconds']:.2f} s", flush=True)


def _run_image_batch(args: dict, ctx: launch.JobContext) -> None:
  """Work function part for a job of several same-shape images x lambdas."""
  from moric_jax.train.batched import compress_images_batched

  config = ml_collections.ConfigDict(args["config"])
  chash, commit = args["chash"], args["commit"]
  images = [load_crop(p, int(args["crop"]), int(config.max_pixels)) for p in args["paths"]]
  lmbdas = [float(l) for l in args["lmbdas"]]
  names = args["names"]
  desc = f"{len(names)} images x{len(lmbdas)} lambdas"
  t0 = time.perf_counter()
  results = compress_images_batched(images, config, lmbdas,
                                    on_chunk=lambda d, t: ctx.progress(d, t, desc))
  ctx.close_bar()
  per = (time.perf_counter() - t0) / (len(lmbdas) * len(images))
  for name, image, row_results in zip(names, images, results):
    for lmbda, result in zip(lmbdas, row_results):
      _emit(ctx, name, image, lmbda, config, chash, commit,
            *packaged(image, result, config, lmbda, per))


def mean_curve(rows: list[dict], key_field: str) -> tuple[list[float], list[float]]:
  """Mean bpp and PSNR over images for each value of ``key_field``, sorted by bpp."""
  groups: dict[str, list[dict]] = {}
  for r in rows:
    groups.setdefault(str(r[key_field]), []).append(r)
  pts = sorted((float(np.mean([float(r["bpp"]) for r in g])),
                float(np.mean([float(r["psnr"]) for r in g]))) for g in groups.values())
  return [p[0] for p in pts], [p[1] for p in pts]


def markdown_table(rows: list[dict], lmbdas: list[float], extra: tuple[str, ...] = ()
                   ) -> str:
  """Per-image rows plus the mean over images of every lambda; ``extra`` columns
  (e.g. ``("seed",)``) go after ``lmbda`` and are left blank in the mean rows."""
  cols = ["image", "lmbda", *extra, "bpp", "psnr", "ms_ssim", "bytes", "encode_seconds",
          "decode_seconds"]
  measured = cols[2 + len(extra):]
  lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

  def cell(v):
    try:
      return f"{float(v):.4g}"
    except (TypeError, ValueError):
      return str(v)

  for r in sorted(rows, key=lambda r: (r["image"], float(r["lmbda"]),
                                      *(str(r.get(c, "")) for c in extra))):
    lines.append("| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |")
  for l in lmbdas:
    g = [r for r in rows if abs(float(r["lmbda"]) - l) <= 1e-12 * max(1.0, l)]
    if g:
      mean = {c: np.mean([float(r[c]) for r in g if r.get(c, "") != ""] or [np.nan])
              for c in measured}
      lines.append("| " + " | ".join([f"**mean of {len(g)}**", cell(l)] + [""] * len(extra)
                                     + [cell(mean[c]) for c in measured]) + " |")
  return "\n".join(lines) + "\n"


def read_jsonl(path: str | Path, field: str) -> dict:
  """``{key: record[field]}`` of a benchmark's ``results.jsonl`` (one JSON object a
  line, each with ``key``; a later line wins); empty when the file does not exist. A
  torn last line (a run killed mid-write) is skipped: its point runs again."""
  done = {}
  path = Path(path)
  if path.exists():
    for line in path.read_text().splitlines():
      try:
        record = json.loads(line)
      except ValueError:
        continue
      done[record["key"]] = record[field]
  return done


def append_jsonl(path: str | Path, key: str, field: str, value) -> None:
  """Appends one finished point ``{"key": key, field: value}`` to ``results.jsonl``."""
  with Path(path).open("a") as fh:
    fh.write(json.dumps({"key": key, field: value}) + "\n")


def complete_images(rows: list[dict], names: list[str], lmbdas) -> list[str]:
  """Those of ``names`` that have a row at every one of ``lmbdas``: the images a mean
  curve may average without mixing image sets from one lambda to the next."""
  have: dict[str, set[float]] = {}
  for r in rows:
    have.setdefault(r["image"], set()).add(round(float(r["lmbda"]), 12))
  want = {round(float(l), 12) for l in lmbdas}
  return [n for n in names if want <= have.get(n, set())]


def anchor_comparison(rows: list[dict], names: list[str], anchor_names, crop: int,
                      lmbdas=None) -> tuple[dict, dict, dict]:
  """Published anchors (``eval.anchors``) against this sweep, on the same images.

  Only the sweep's images that have every one of ``lmbdas`` (default: every lambda in
  ``rows``) are compared, so neither mean curve mixes image sets. A per-image anchor
  is averaged over those of them it has, and so is our curve; an anchor published only
  as a mean (C3: the 24 Kodak images) gets a BD-rate only when all its images are
  among them (its curve is still drawn, ``error`` says why there is no BD-rate).

  Returns ``(curves, bd, styles)``: ``curves[label] = (bpps, psnrs)`` to draw, ``bd[name]``
  with ``images`` (how many the anchor's curve averages), ``same_images`` (both curves
  average exactly the same images: the only case with a BD-rate), ``complete`` (every
  image of the sweep has every lambda), the BD-rate, the PSNR overlap and its
  fraction; and dashed line styles. Crops are not comparable with the anchors' full
  images: nothing is drawn, ``bd`` says why.
  """
  from moric_jax.eval import anchors, bdrate
  curves, bd, styles = {}, {}, {}
  if not anchor_names:
    return curves, bd, styles
  if crop:
    reason = f"anchors are full-image results; this sweep coded {crop}x{crop} crops"
    return curves, {n: {"bd_rate_percent": None, "error": reason} for n in anchor_names}, styles
  if lmbdas is None:
    lmbdas = {float(r["lmbda"]) for r in rows}
  done = complete_images(rows, names, lmbdas)
  complete = len(done) == len(dict.fromkeys(names))
  for name in anchor_names:
    mean_of = anchors.ANCHORS[name].mean_of
    curve = anchors.curve_on(name, done) if (done and not mean_of) else None
    if curve is None:   # drawn over the sweep's images; a BD-rate only on complete ones
      curve = anchors.curve_on(name, names)
    if curve is None:
      continue   # none of our images in that data set (e.g. CLIC anchors on Kodak)
    kind = "mean of " if mean_of else ""
    label = f"{curve.label} ({kind}{len(curve.images)} img)"
    curves[label] = (curve.bpps, curve.psnrs)
    styles[label] = {"linestyle": "--", "marker": "x"}
    used = set(curve.images)
    same = used <= set(done)   # every image the anchor averages has all our lambdas
    entry = {"label": curve.label, "images": len(curve.images), "same_images": same,
             "complete": complete}
    if not same:
      have = len(used & set(done))
      why = (f"published as a mean of {len(used)} images only; {have} of them have every "
             f"lambda in this sweep: no BD-rate on other images" if mean_of else
             "no image of this data set has every lambda yet")
      bd[name] = dict(entry, bd_rate_percent=None, error=why)
      continue
    ours = mean_curve([r for r in rows if r["image"] in used], "lmbda")
    overlap = anchors.psnr_overlap(curve.psnrs, ours[1])
    if overlap:
      entry.update(psnr_overlap_db=[round(overlap[0], 3), round(overlap[1], 3)],
                   overlap_fraction=round(overlap[2], 3))
    try:
      value, method = bdrate.bd_rate_auto(curve.bpps, curve.psnrs, *ours)
      bd[name] = dict(entry, bd_rate_percent=value, method=method)
    except ValueError as e:
      bd[name] = dict(entry, bd_rate_percent=None, error=str(e))
  return curves, bd, styles


def anchors_markdown(bd: dict, note: str = "") -> str:
  """The ``results.md`` section of the anchor BD-rates (``note``: a line above it, e.g.
  that the sweep is incomplete)."""
  if not bd:
    return ""
  lines = ["", "## BD-rate vs published anchors (negative: moric_jax saves bits)", ""]
  if note:
    lines += [note, ""]
  lines += ["| anchor | images | same images | BD-rate | PSNR overlap | note |",
            "|---|---|---|---|---|---|"]
  for name, e in bd.items():
    value = e.get("bd_rate_percent")
    rate = "" if value is None else f"{value:+.1f}%"
    overlap = ""
    if e.get("psnr_overlap_db"):
      lo, hi = e["psnr_overlap_db"]
      overlap = f"{lo:.2f}-{hi:.2f} dB ({100 * e['overlap_fraction']:.0f}%)"
    same = "yes" if e.get("same_images") else "no"
    note = e.get("error", e.get("method", ""))
    lines.append(f"| {e.get('label', name)} (`{name}`) | {e.get('images', '')} | {same} | "
                 f"{rate} | {overlap} | {note} |")
  return "\n".join(lines) + "\n"


def collect(out_dir: str | Path, echo: Callable[[str], None] = print,
            anchor_names=None) -> dict:
  """Merges the job files and writes the tables, RD plot and BD-rates of a sweep.

  Reads ``sweep.json`` for the images, lambdas and config hash; computes baselines
  for images that have none yet (images not found are skipped with a note); draws
  the published anchors (``anchor_names``: names or a comma-separated string, default
  the sweep config's ``anchors``, else all; ``anchor_comparison``). Returns
  ``{"rows": n, "missing": [keys], "bd": {...}}``.
  """
  from moric_jax.eval import anchors as anchors_lib
  from moric_jax.eval import baselines as baselines_lib
  from moric_jax.eval import bdrate, plots

  out = Path(out_dir)
  plan_path = out / "sweep.json"
  if not plan_path.exists():
    raise FileNotFoundError(f"{plan_path} not found: not a sweep output directory")
  plan = json.loads(plan_path.read_text())
  chash, lmbdas = plan["config_hash"], [float(l) for l in plan["lmbdas"]]
  cfg = sweep_fields(plan["config"])
  max_pixels = int(plan["config"]["max_pixels"])
  all_rows, added = launch.merge_rows(out, out / "results.csv", FIELDS, key_of)
  names = [Path(p).stem for p in plan["images"]]
  expected = [row_key(n, l, chash) for n in names for l in lmbdas]
  have = {key_of(r) for r in all_rows}
  missing = [k for k in expected if k not in have]
  rows = [r for r in all_rows if r["config_hash"] == chash]

  baseline_path = out / "baselines.csv"
  baseline_rows = launch.read_csv(baseline_path)
  done_b = {r["image"] for r in baseline_rows}
  new_b = 0
  for path, name in zip(plan["images"], names):
    if name in done_b or not cfg["baselines"]:
      continue
    try:
      image = load_crop(path, int(cfg["crop"]), max_pixels)
    except (OSError, image_io.ImageError) as e:
      echo(f"baselines of {name} skipped: {e}")
      continue
    for codec in cfg["baselines"]:
      for row in baselines_lib.sweep(image_io.to_uint8(image), codec):
        baseline_rows.append({k: str(v) for k, v in dict(row, image=name).items()})
        new_b += 1
  if new_b:
    launch.write_csv(baseline_path, baseline_rows, BASELINE_FIELDS)

  # An incomplete sweep's mean curves average only the images with every lambda
  # (all rows when none has them yet: then every curve says "incomplete").
  done = complete_images(rows, names, lmbdas)
  compared = set(done) if done else {r["image"] for r in rows}
  note = ""
  if missing:
    note = (f"**Incomplete sweep**: {len(missing)} of {len(expected)} rows missing; "
            f"{len(done)} of {len(names)} images have every lambda. The curves and "
            f"BD-rates use only those images" + ("" if done else " (none yet: the curves "
            "mix image sets)") + "; the table's mean rows average the rows present.")
  curves = ({"moric_jax": mean_curve([r for r in rows if r["image"] in compared], "lmbda")}
            if rows else {})
  codecs = sorted({r["codec"] for r in baseline_rows})
  for codec in codecs:
    curves[codec] = mean_curve([r for r in baseline_rows if r["codec"] == codec and (
        not missing or r["image"] in compared)], "quality")
  if anchor_names is None:
    anchor_names = cfg["anchors"]
  anchor_curves, anchor_bd, styles = anchor_comparison(
      rows, names, anchors_lib.parse_names(anchor_names), int(cfg["crop"]), lmbdas)
  title = f"{len(names)} image(s), mean over images (config {chash})"
  if missing:
    title = f"INCOMPLETE: {len(done)} of {len(names)} image(s) compared (config {chash})"
  plots.rd_plot({**curves, **anchor_curves}, out / "rd.png", styles=styles, title=title)
  bd = {}
  for codec in codecs:
    if not rows:
      bd[codec] = {"bd_rate_percent": None, "error": "no moric_jax rows yet"}
      continue
    try:
      value, method = bdrate.bd_rate_auto(*curves[codec], *curves["moric_jax"])
      bd[codec] = {"bd_rate_percent": value, "method": method}
    except ValueError as e:
      bd[codec] = {"bd_rate_percent": None, "error": str(e)}
  if anchor_bd:
    bd["anchors"] = anchor_bd
  if missing:
    bd["incomplete"] = {"rows_missing": len(missing), "rows_expected": len(expected),
                        "images_compared": sorted(compared) if done else []}
  image_io.atomic_write_bytes(out / "bd.json", json.dumps(bd, indent=2).encode())
  image_io.atomic_write_bytes(out / "results.md", (
      (note + "\n\n" if note else "") + markdown_table(rows, lmbdas)
      + anchors_markdown(anchor_bd, f"Incomplete sweep: compared on the {len(done)} of "
                         f"{len(names)} images with every lambda." if missing else "")
  ).encode())
  echo(json.dumps(bd, indent=2))
  if missing:
    echo(f"{len(missing)} of {len(expected)} rows missing (unfinished or failed jobs), "
         f"e.g. {missing[0]}")
  echo(f"wrote {out / 'results.csv'} ({len(rows)} rows, {added} new), "
       f"{out / 'results.md'}, {out / 'rd.png'}, {out / 'bd.json'}")
  return {"rows": len(rows), "added": added, "missing": missing, "bd": bd}


def apply_overrides(config: ml_collections.ConfigDict, items) -> None:
  """``"dotted.key=value"`` items into ``config`` in place (Python-literal values, else
  strings; blank items skipped). ``ValueError`` for an item that is not ``key=value``
  or names no existing field (a typo is an error, not a new field)."""
  import ast
  for item in filter(None, (x.strip() for x in items)):
    key, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"override {item!r} is not key=value")
    *path, last = key.strip().split(".")
    node = config
    try:
      for part in path:
        node = node[part]
      node[last]
    except (KeyError, AttributeError, TypeError):
      raise ValueError(f"override {item!r}: no field {key!r} in the config") from None
    try:
      value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      value = text.strip()
    node[last] = value


class SweepError(Exception):
  """A sweep that could not run or finish; the message is the one line to print."""


def run(config: ml_collections.ConfigDict, echo: Callable[[str], None] = print) -> None:
  """Runs the sweep ``config`` (``configs/sweep.py``): plans it, runs its unfinished
  jobs with ``config.launch.launcher`` and, when they were waited for, collects the tables.
  ``SweepError`` with one line for a bad launcher or images, a launcher that refuses
  the jobs, failed jobs or missing rows (a rerun resumes)."""
  from moric_jax.eval import anchors
  if str(config.launch.launcher) not in launch.LAUNCHERS:
    raise SweepError(f"--config.launch.launcher={config.launch.launcher} is not one of "
                     f"{', '.join(launch.LAUNCHERS)}")
  launch.default_compile_cache()
  out = Path(config.output_dir)
  (out / "files").mkdir(parents=True, exist_ok=True)
  try:
    images = expand_images(config.sweep.images)
    anchors.parse_names(config.sweep.anchors)
  except (FileNotFoundError, ValueError) as e:
    raise SweepError(str(e)) from None
  plan = write_plan(config, out, images)
  chash = plan["config_hash"]
  # Rows of an earlier, interrupted run may sit in jobs/ unmerged: merge them first.
  rows, _ = launch.merge_rows(out, out / "results.csv", FIELDS, key_of)
  done = {key_of(r) for r in rows}
  lmbdas = lmbdas_of(config)
  planned = [row_key(Path(p).stem, l, chash) for p in images for l in lmbdas]
  n_done = sum(k in done for k in planned)
  jobs = make_jobs(config, images, done, chash, plan["git_commit"])
  echo(f"{len(images)} images x {len(lmbdas)} lambdas, config {chash}, launcher "
       f"{config.launch.launcher}: {len(jobs)} job(s); {n_done} rows already done")
  try:
    report_ = launch.run_jobs(jobs, out, config.launch)
  except RuntimeError as e:   # e.g. launcher=slurm where there is no SLURM
    raise SweepError(str(e)) from None
  if not report_.waited:
    echo(f"submitted {report_.submitted} job(s) {report_.job_ids[:3]}...; when they "
         f"are done: python -m experiments.collect --dir={out}")
    return
  summary = collect(out, echo)
  if report_.failed:
    raise SweepError(f"{len(report_.failed)} job(s) failed (rerun the same command to "
                     f"retry them; they resume from their checkpoints): "
                     + "; ".join(f"{n}: {m}" for n, m, _ in report_.failed[:3]))
  if summary["missing"]:
    raise SweepError(f"{len(summary['missing'])} row(s) missing")
