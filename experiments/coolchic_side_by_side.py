r"""Cool-chic 5.0.1 itself, side by side with moric_jax: same crops, lambdas, iterations.

  python -m experiments.coolchic_side_by_side --coolchic_dir=~/Cool-Chic \
      --images=kodim01,kodim04,kodim14,kodim15 --crop=256 --steps=2000 \
      --lmbdas=0.001,0.002 --seeds=0 --out_dir=runs/coolchic_side_by_side

The way CompressAI's benchmarks call VTM from a path: Cool-chic runs from a checkout
the user made (``--coolchic_dir``, tag v5.0.1, WORKSPACE.md "Cool-chic side by side"),
with its own Python (``--coolchic_python``; default its ``venv/`` or ``.venv/``).
For every image x lambda x seed it codes the same ``--crop`` centre crop
(``image_io.centre_crop``, written once as an 8-bit PNG under ``crops/``) with

  <python> <dir>/cc_encode.py -i crop.png -o files/<point>.cool --workdir=work/<point> \
      --dec_cfg_residue=<dir>/cfg/dec/intra/hop.cfg --n_itr=<steps> --lmbda=<lambda>
  <python> <dir>/cc_decode.py -i files/<point>.cool -o decoded/<point>.png

and measures it here: bpp from the bitstream's size, PSNR and MS-SSIM of the decoded
PNG against the crop (``eval/metrics.py``, the code that measures our files), encode
seconds = wall time of ``cc_encode.py`` (training, bitstream and its own check decode),
decode seconds = wall time of ``cc_decode.py`` (a fresh Python with torch: mostly
start-up). Cool-chic 5.0.1 has no seed flag (its networks start from torch's unseeded
draw): ``--seeds`` are repetitions there and seeds of ours.

``--codecs=coolchic,moric_jax`` (default) also runs our codec on the same points
through ``sweeps.rd.run`` (``--preset``, ``--set`` overrides; a real sweep per seed
under ``moric/seed<s>/``, resumable on its own). Every finished point is one line of
``results.jsonl``; a rerun skips the points already there (a point's key holds the
codec, image, crop, steps, lambda, seed and a hash of the codec's settings).
``results.md``: each codec's table (the sweep's ``results.md`` format) and per image
and seed our PSNR gap at Cool-chic's rates and our BD-rate against it; ``rd.png``
(mean over the images and seeds both codecs finished) and ``rd_<image>.png``.
Mistakes (no checkout, no ``cc_encode.py``, no Python, a failing Cool-chic run) end
in one ``error:`` line (a failing run adds the tail of its stderr; the whole log is
under ``logs/``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from absl import app, flags

from moric_jax import image_io
from moric_jax.eval import bdrate, metrics
from moric_jax.sweeps import rd

COOLCHIC = "coolchic"
MORIC = "moric_jax"
LABELS = {COOLCHIC: "Cool-chic 5.0.1", MORIC: "moric_jax"}
ENCODE_SCRIPT, DECODE_SCRIPT = "cc_encode.py", "cc_decode.py"
DEFAULT_CFG = "cfg/dec/intra/hop.cfg"     # Cool-chic 5.0.1's image decoder (HOP)
MAX_EXTRAPOLATION = math.log(1.25)        # gap at a rate at most 25% outside our points


class SideBySideError(Exception):
  """A mistake or a failed run; the message is what to print (``error: ...``)."""


@dataclasses.dataclass
class Settings:
  """One side-by-side run (the flags, as values). ``images``: names in ``kodak_dir``
  or paths; ``crop`` in px (0: whole images); ``steps``: iterations of both codecs."""
  images: Sequence[str]
  out_dir: Path
  coolchic_dir: Path | None = None
  coolchic_python: Path | None = None
  kodak_dir: Path = Path("../shared/data/kodak")
  crop: int = 256
  steps: int = 2000
  lmbdas: Sequence[float] = (0.001, 0.002)
  seeds: Sequence[int] = (0,)
  codecs: Sequence[str] = (COOLCHIC, MORIC)
  coolchic_cfg: str = DEFAULT_CFG
  coolchic_args: Sequence[str] = ()
  preset: str = "default"
  overrides: Sequence[str] = ()
  heartbeat_s: float = 60.0


# ---------------------------------------------------------------- Cool-chic's side


def coolchic_python(directory: Path, python: Path | None) -> Path:
  """The Python to run Cool-chic with: ``python`` if given, else the checkout's
  ``venv/`` (its README's name) or ``.venv/``."""
  if python:
    if not Path(python).expanduser().exists():
      raise SideBySideError(f"--coolchic_python={python} does not exist")
    return Path(python).expanduser().absolute()
  for venv in ("venv", ".venv"):
    p = Path(directory) / venv / "bin" / "python"
    if p.exists():
      return p
  raise SideBySideError(
      f"no Python for Cool-chic: neither {directory}/venv/bin/python nor "
      f"{directory}/.venv/bin/python exists; make its venv (WORKSPACE.md, \"Cool-chic "
      f"side by side\") or set --coolchic_python")


def check_checkout(s: Settings) -> tuple[Path, Path, Path]:
  """``(checkout, python, decoder cfg)`` after checking they are there; warns when
  ``cc_encode.py`` does not say it is 5.0.1."""
  if s.coolchic_dir is None:
    raise SideBySideError("set --coolchic_dir to a Cool-chic 5.0.1 checkout (WORKSPACE.md, "
                          "\"Cool-chic side by side\"), or --codecs=moric_jax")
  d = Path(s.coolchic_dir).expanduser().absolute()   # it runs with cwd = d
  if not d.is_dir():
    raise SideBySideError(f"--coolchic_dir={d} is not a directory")
  for script in (ENCODE_SCRIPT, DECODE_SCRIPT):
    if not (d / script).is_file():
      raise SideBySideError(f"{d} has no {script} (Cool-chic 5.0.1's entry point): is it "
                            f"a checkout of Orange-OpenSource/Cool-Chic at tag v5.0.1?")
  cfg = Path(s.coolchic_cfg)
  cfg = cfg if cfg.is_absolute() else d / cfg
  if not cfg.is_file():
    raise SideBySideError(f"Cool-chic decoder config {cfg} does not exist (--coolchic_cfg)")
  python = coolchic_python(d, s.coolchic_python)
  if "5.0.1" not in (d / ENCODE_SCRIPT).read_text(errors="replace"):
    print(f"warning: {d / ENCODE_SCRIPT} does not say version 5.0.1; the rows are "
          f"labelled {LABELS[COOLCHIC]} all the same", flush=True)
  return d, python, cfg


def settings_hash(*parts) -> str:
  return hashlib.sha256(repr(parts).encode()).hexdigest()[:8]


def _tail(path: Path, lines: int = 15) -> str:
  text = path.read_text(errors="replace") if path.exists() else ""
  return "\n".join(text.strip().splitlines()[-lines:])


def run_logged(cmd: list[str], cwd: Path, log: Path, what: str, heartbeat_s: float,
               echo: Callable[[str], None]) -> float:
  """Runs ``cmd`` (stdout to ``log``, stderr to ``log.err``), printing every
  ``heartbeat_s`` seconds how long it has run and its last output line; returns its
  wall seconds. ``SideBySideError`` with the tail of its stderr when it fails."""
  log.parent.mkdir(parents=True, exist_ok=True)
  err = log.with_suffix(log.suffix + ".err")
  t0 = time.perf_counter()
  with log.open("w") as out, err.open("w") as errf:
    try:
      proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=errf, text=True,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
    except OSError as e:
      raise SideBySideError(f"{what}: cannot start {cmd[0]}: {e}") from None
    while True:
      try:
        code = proc.wait(timeout=heartbeat_s)
        break
      except subprocess.TimeoutExpired:
        last = _tail(log, 1)[-100:]
        echo(f"    ... {time.perf_counter() - t0:.0f} s" + (f": {last}" if last else ""))
  seconds = time.perf_counter() - t0
  if code:
    tail = _tail(err) or _tail(log)
    raise SideBySideError(f"{what} failed (exit {code}; logs {log} and {err}); its "
                          f"stderr ends:\n{tail}")
  return seconds


def crop_png(path: Path, crop: int, out: Path) -> tuple[np.ndarray, Path]:
  """``(crop as (H, W, 3) uint8, its PNG)``: the centre crop every codec codes."""
  try:
    image = image_io.centre_crop(image_io.load_image(str(path)), crop)
  except (OSError, image_io.ImageError) as e:
    raise SideBySideError(f"{path}: {e}") from None
  target = image_io.to_uint8(image)
  png = out / "crops" / f"{path.stem}_crop{crop}.png"
  if not png.exists():
    image_io.save_png(png, target)
  return target, png


def measure(target: np.ndarray, bitstream: Path, decoded: Path) -> dict:
  """bpp from the file's size, PSNR / MS-SSIM of the decoded PNG (our metrics code)."""
  try:
    got = image_io.to_uint8(image_io.load_image(str(decoded)))
  except (OSError, image_io.ImageError) as e:
    raise SideBySideError(f"decoded image {decoded}: {e}") from None
  if got.shape != target.shape:
    raise SideBySideError(f"decoded image {decoded} is {got.shape[1]}x{got.shape[0]}, "
                          f"the crop {target.shape[1]}x{target.shape[0]}")
  h, w = target.shape[:2]
  size = bitstream.stat().st_size
  return {"height": h, "width": w, "bytes": size,
          "bpp": metrics.bpp_from_bytes(size, h, w),
          "psnr": metrics.psnr_uint8(target, got), "ms_ssim": metrics.ms_ssim_uint8(target, got)}


def coolchic_point(s: Settings, checkout: tuple[Path, Path, Path], name: str,
                   target: np.ndarray, png: Path, lmbda: float, seed: int, stem: str,
                   echo: Callable[[str], None]) -> dict:
  """Encodes and decodes one point with Cool-chic; its row."""
  d, python, cfg = checkout
  out = Path(s.out_dir).absolute()
  bitstream, decoded = out / "files" / f"{stem}.cool", out / "decoded" / f"{stem}.png"
  work = out / "work" / stem
  shutil.rmtree(work, ignore_errors=True)   # its frame_encoder.pt would skip training
  work.mkdir(parents=True)
  bitstream.parent.mkdir(parents=True, exist_ok=True)
  decoded.parent.mkdir(parents=True, exist_ok=True)
  what = f"Cool-chic on {name} lambda={lmbda:g} seed {seed}"
  encode_s = run_logged(
      [str(python), str(d / ENCODE_SCRIPT), f"--input={png.absolute()}",
       f"--output={bitstream}", f"--workdir={work}", f"--dec_cfg_residue={cfg}",
       f"--n_itr={s.steps}", f"--lmbda={lmbda!r}", *s.coolchic_args],
      d, out / "logs" / f"{stem}.encode.log", what, s.heartbeat_s, echo)
  if not bitstream.is_file():
    raise SideBySideError(f"{what}: it exited 0 but wrote no bitstream at {bitstream}")
  decode_s = run_logged(
      [str(python), str(d / DECODE_SCRIPT), f"--input={bitstream}", f"--output={decoded}"],
      d, out / "logs" / f"{stem}.decode.log", f"Cool-chic decoding {bitstream.name}",
      s.heartbeat_s, echo)
  if not decoded.is_file():
    raise SideBySideError(f"Cool-chic decoding {bitstream.name}: it exited 0 but wrote "
                          f"no image at {decoded}")
  return dict(measure(target, bitstream, decoded), encode_seconds=encode_s,
              decode_seconds=decode_s)


# ---------------------------------------------------------------- our side


def moric_config(s: Settings, paths: Sequence[Path], seed: int):
  """The sweep config (``configs/sweep.py`` fields) of our rows at ``seed``:
  ``--preset`` with the same crop, lambdas and steps, no baselines or anchors."""
  from configs import sweep as sweep_config
  from moric_jax import presets
  from moric_jax.sweeps import launch
  if s.preset not in presets.PRESETS:
    raise SideBySideError(f"--preset={s.preset} is not one of {', '.join(presets.PRESETS)}")
  config = presets.PRESETS[s.preset]()
  with config.unlocked():   # the preset's codec fields, a sweep's own beside them
    config.sweep = sweep_config.sweep_fields()
    config.launch = launch.launch_fields()
  config.sweep.images = ",".join(str(p) for p in paths)
  config.sweep.lmbdas = tuple(float(l) for l in s.lmbdas)
  config.sweep.crop = int(s.crop)
  config.num_steps = int(s.steps)
  config.seed = int(seed)
  config.sweep.baselines = ()
  config.sweep.anchors = "none"
  config.output_dir = str(Path(s.out_dir) / "moric" / f"seed{seed}")
  try:
    rd.apply_overrides(config, s.overrides)
  except ValueError as e:
    raise SideBySideError(str(e)) from None
  return config


def moric_rows(config) -> dict[tuple[str, float], dict]:
  """``{(image, lambda): row}`` of a finished sweep (``results.csv`` rows of its config)."""
  from moric_jax.sweeps import launch
  out = Path(config.output_dir)
  chash = rd.config_hash(config)
  rows = {}
  for r in launch.read_csv(out / "results.csv"):
    if r.get("config_hash") == chash:
      rows[(r["image"], float(r["lmbda"]))] = r
  return rows


# ---------------------------------------------------------------- tables and plots


def point_key(codec: str, image: str, s: Settings, lmbda: float, seed: int, h: str) -> str:
  """A point's key in ``results.jsonl``; ``h``: the hash of the codec's settings."""
  return f"{codec}|{image}|crop{s.crop}|steps{s.steps}|lmbda{float(lmbda):g}|seed{seed}|{h}"


KeyFn = Callable[[str, str, float, int], "str | None"]   # (codec, image, lambda, seed)


def _curve(rows: list[dict]) -> tuple[list[float], list[float]]:
  pts = sorted((float(r["bpp"]), float(r["psnr"])) for r in rows)
  return [p[0] for p in pts], [p[1] for p in pts]


def gap_at(ours: tuple[list[float], list[float]], bpp: float
           ) -> tuple[float | None, bool]:
  """``(our PSNR at rate bpp, extrapolated?)``: piecewise linear in log-rate between
  our points; past our last point on either side by at most 25% in rate, the line of
  the two nearest points; ``None`` beyond that (or with fewer than 2 points)."""
  b, p = np.log(np.asarray(ours[0], float)), np.asarray(ours[1], float)
  if len(b) < 2 or len(set(b.tolist())) < 2:
    return None, False
  x = math.log(bpp)
  if b[0] <= x <= b[-1]:
    return float(np.interp(x, b, p)), False
  i, j = (0, 1) if x < b[0] else (-2, -1)
  if min(abs(x - b[0]), abs(x - b[-1])) > MAX_EXTRAPOLATION or b[j] == b[i]:
    return None, False
  return float(p[i] + (p[j] - p[i]) * (x - b[i]) / (b[j] - b[i])), True


def comparison(done: dict, s: Settings, names: list[str], key: KeyFn) -> list[dict]:
  """Per image and seed with both codecs' points: our PSNR gap at each Cool-chic
  point's rate [dB] and our BD-rate against Cool-chic [%]."""
  lines = []
  for name in names:
    for seed in s.seeds:
      get = lambda c: [done[k] for l in s.lmbdas if (k := key(c, name, l, seed)) in done]
      cc, ours = get(COOLCHIC), get(MORIC)
      if not cc or not ours:
        continue
      gaps = []
      for r in sorted(cc, key=lambda r: r["bpp"]):
        v, extra = gap_at(_curve(ours), r["bpp"])
        gaps.append((None if v is None else v - r["psnr"], extra))
      try:
        bd = bdrate.bd_rate_auto(*_curve(cc), *_curve(ours))[0]
      except ValueError:
        bd = None
      lines.append({"image": name, "seed": seed, "coolchic": cc, "ours": ours,
                    "gaps": gaps, "bd": bd})
  return lines


def markdown(done: dict, s: Settings, names: list[str], key: KeyFn) -> str:
  """``results.md``: each codec's points, then ours against Cool-chic's."""
  pick = lambda c: [done[k] for n in names for seed in s.seeds for l in s.lmbdas
                    if (k := key(c, n, l, seed)) in done]
  head = [f"# {LABELS[COOLCHIC]} side by side with moric_jax", "",
          f"{s.steps} iterations each, {s.crop or 'full'}"
          + (f"x{s.crop} centre crops" if s.crop else " images")
          + f", lambdas {', '.join(f'{l:g}' for l in s.lmbdas)}, seeds "
          f"{', '.join(map(str, s.seeds))} (Cool-chic: repetitions, it has no seed flag). "
          f"Cool-chic: `{' '.join([s.coolchic_cfg, *s.coolchic_args])}`; moric_jax: preset "
          f"`{' '.join([s.preset, *s.overrides])}`. bpp from file sizes, PSNR of the decoded "
          f"images (eval/metrics.py)."]
  parts = ["\n".join(head) + "\n"]
  for codec in s.codecs:
    rows = pick(codec)
    parts.append(f"\n## {LABELS[codec]} ({len(rows)} points)\n\n"
                 + rd.markdown_table(rows, list(s.lmbdas), extra=("seed",)))
  lines = comparison(done, s, names, key)
  if lines:
    fmt = lambda rows: " / ".join(f"{r['bpp']:.4f}, {r['psnr']:.2f}"
                                  for r in sorted(rows, key=lambda r: r["bpp"]))
    md = ["", "## moric_jax vs Cool-chic (negative gap: we are behind)", "",
          "| image | seed | Cool-chic (bpp, dB) | moric_jax (bpp, dB) | PSNR gap at "
          "Cool-chic's rates | BD-rate vs Cool-chic | encode s (Cool-chic / ours) |",
          "|---|---|---|---|---|---|---|"]
    for x in lines:
      gaps = " / ".join("n/a" if g is None else f"{g:+.2f}" + ("*" if e else "")
                        for g, e in x["gaps"])
      secs = (f"{np.mean([r['encode_seconds'] for r in x['coolchic']]):.0f} / "
              f"{np.mean([r['encode_seconds'] for r in x['ours']]):.0f}")
      bd = "-" if x["bd"] is None else f"{x['bd']:+.1f}%"
      md.append(f"| {x['image']} | {x['seed']} | {fmt(x['coolchic'])} | {fmt(x['ours'])} | "
                f"{gaps} | {bd} | {secs} |")
    gaps = [g for x in lines for g, _ in x["gaps"] if g is not None]
    n_all = sum(len(x["gaps"]) for x in lines)
    n_extra = sum(e for x in lines for g, e in x["gaps"] if g is not None)
    bds = [x["bd"] for x in lines if x["bd"] is not None]
    md += ["", f"Mean PSNR gap at Cool-chic's rates: "
           + (f"**{np.mean(gaps):+.2f} dB** over {len(gaps)} of {n_all} points"
              if gaps else f"n/a (none of {n_all} points within reach of our curves)")
           + f" (* {n_extra} extrapolated, at most 25% in rate past our points; n/a: "
           f"further). Mean BD-rate vs Cool-chic: "
           + (f"**{np.mean(bds):+.1f}%** over {len(bds)} image-seeds." if bds else "n/a.")]
    parts.append("\n".join(md) + "\n")
  return "".join(parts)


def plot(done: dict, s: Settings, names: list[str], key: KeyFn, out: Path) -> None:
  """``rd.png``: mean curves over the (image, seed) pairs every codec finished;
  ``rd_<image>.png``: every codec and seed."""
  from moric_jax.eval import plots
  complete = lambda c, n, seed: all(key(c, n, l, seed) in done for l in s.lmbdas)
  pairs = [(n, seed) for n in names for seed in s.seeds
           if all(complete(c, n, seed) for c in s.codecs)]
  if pairs:
    curves = {f"{LABELS[c]} (mean of {len(pairs)})": rd.mean_curve(
        [done[key(c, n, l, seed)] for n, seed in pairs for l in s.lmbdas], "lmbda")
        for c in s.codecs}
    plots.rd_plot(curves, out / "rd.png", title=f"{s.crop or 'full'} px crops, "
                  f"{s.steps} iterations, {len(pairs)} image-seed(s)")
  for n in names:
    curves = {}
    for c in s.codecs:
      for seed in s.seeds:
        rows = [done[k] for l in s.lmbdas if (k := key(c, n, l, seed)) in done]
        if rows:
          curves[f"{LABELS[c]} seed {seed}"] = _curve(rows)
    if curves:
      plots.rd_plot(curves, out / f"rd_{n}.png", title=f"{n}: {s.steps} iterations")


# ---------------------------------------------------------------- the run


def resolve_image(spec: str, folder: Path) -> Path:
  p = Path(spec)
  p = p if p.suffix else Path(folder) / f"{spec}.png"
  if not p.is_file():
    raise SideBySideError(f"image {p} does not exist (--images, --kodak_dir)")
  return p


def run(s: Settings, echo: Callable[[str], None] = print) -> dict:
  """Runs the points not yet in ``results.jsonl``; writes ``results.md`` and the plots
  after each. Returns ``{"rows": {key: row}, "comparison": [...]}``.
  ``SideBySideError`` for a mistake or a failed run (finished points are kept)."""
  bad = [c for c in s.codecs if c not in LABELS]
  if bad or not s.codecs:
    raise SideBySideError(f"--codecs: {bad or 'none given'}; known: {', '.join(LABELS)}")
  if len(s.lmbdas) < 2:
    raise SideBySideError("--lmbdas needs at least 2 values (a curve per codec)")
  paths = [resolve_image(i, s.kodak_dir) for i in s.images]
  names = [p.stem for p in paths]
  out = Path(s.out_dir)
  out.mkdir(parents=True, exist_ok=True)
  hashes, configs = {}, {}   # hashes[(codec, seed)]: the codec's settings
  if COOLCHIC in s.codecs:
    checkout = check_checkout(s)
    h = settings_hash(checkout[2].read_text(errors="replace"), tuple(s.coolchic_args))
    hashes.update({(COOLCHIC, seed): h for seed in s.seeds})
  if MORIC in s.codecs:
    configs = {seed: moric_config(s, paths, seed) for seed in s.seeds}
    hashes.update({(MORIC, seed): rd.config_hash(c) for seed, c in configs.items()})

  def key(c: str, n: str, l: float, seed: int) -> str | None:   # None: codec not run
    h = hashes.get((c, seed))
    return None if h is None else point_key(c, n, s, l, seed, h)

  path = out / "results.jsonl"
  done = rd.read_jsonl(path, "row")

  def finish():
    image_io.atomic_write_bytes(out / "results.md", markdown(done, s, names, key).encode())
    plot(done, s, names, key, out)

  if COOLCHIC in s.codecs:
    todo = [(p, l, seed) for p in paths for seed in s.seeds for l in s.lmbdas
            if key(COOLCHIC, p.stem, l, seed) not in done]
    echo(f"{LABELS[COOLCHIC]}: {len(paths)} images x {len(s.lmbdas)} lambdas x "
         f"{len(s.seeds)} seeds, {s.steps} iterations: {len(todo)} point(s) to run")
    for i, (p, lmbda, seed) in enumerate(todo):
      target, png = crop_png(p, s.crop, out)
      stem = (f"{p.stem}_crop{s.crop}_itr{s.steps}_lmbda{lmbda:g}_seed{seed}_"
              f"{hashes[(COOLCHIC, seed)]}")
      echo(f"[{i + 1}/{len(todo)}] {LABELS[COOLCHIC]} {p.stem} "
           f"{target.shape[1]}x{target.shape[0]} lambda={lmbda:g} seed {seed}: encoding")
      row = coolchic_point(s, checkout, p.stem, target, png, lmbda, seed, stem, echo)
      row = dict(row, codec=COOLCHIC, image=p.stem, lmbda=float(lmbda), seed=int(seed),
                 steps=int(s.steps))
      k = key(COOLCHIC, p.stem, lmbda, seed)
      done[k] = row
      rd.append_jsonl(path, k, "row", row)
      echo(f"  {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB, encode "
           f"{row['encode_seconds']:.0f} s, decode {row['decode_seconds']:.1f} s")
      finish()
  if MORIC in s.codecs:
    for seed in s.seeds:
      config = configs[seed]
      chash = hashes[(MORIC, seed)]
      keys = {(p.stem, l): key(MORIC, p.stem, l, seed) for p in paths for l in s.lmbdas}
      if all(k in done for k in keys.values()):
        continue
      echo(f"moric_jax seed {seed}: sweep in {config.output_dir} (preset {s.preset}, "
           f"config {chash})")
      try:
        rd.run(config, echo)
      except rd.SweepError as e:
        raise SideBySideError(f"moric_jax sweep (seed {seed}): {e}") from None
      rows = moric_rows(config)
      for (name, lmbda), k in keys.items():
        r = rows.get((name, float(lmbda)))
        if r is None or k in done:
          continue
        row = {"codec": MORIC, "image": name, "lmbda": float(lmbda), "seed": int(seed),
               "steps": int(s.steps), "config_hash": chash,
               **{k: int(float(r[k])) for k in ("height", "width", "bytes")},
               **{k: float(r[k]) for k in ("bpp", "psnr", "ms_ssim", "encode_seconds",
                                           "decode_seconds")}}
        done[k] = row
        rd.append_jsonl(path, k, "row", row)
  finish()
  text = (out / "results.md").read_text()
  echo(text)
  echo(f"wrote {path}, {out / 'results.md'}, {out / 'rd.png'}")
  return {"rows": done, "comparison": comparison(done, s, names, key)}


_COOLCHIC_DIR = flags.DEFINE_string("coolchic_dir", None, "A Cool-chic checkout at tag "
                                    "v5.0.1 (WORKSPACE.md, \"Cool-chic side by side\").")
_COOLCHIC_PYTHON = flags.DEFINE_string("coolchic_python", None, "Its Python (default: "
                                       "<coolchic_dir>/venv/bin/python or .venv/bin/python).")
_COOLCHIC_CFG = flags.DEFINE_string("coolchic_cfg", DEFAULT_CFG, "Cool-chic decoder config "
                                    "(--dec_cfg_residue), relative to the checkout.")
_COOLCHIC_ARGS = flags.DEFINE_multi_string("coolchic_arg", [], "Extra cc_encode.py "
                                           "argument, e.g. --coolchic_arg=--start_lr=1e-2.")
_IMAGES = flags.DEFINE_list("images", ["kodim01", "kodim04", "kodim14", "kodim15"],
                            "Image names in --kodak_dir, or paths.")
_KODAK = flags.DEFINE_string("kodak_dir", "../shared/data/kodak", "Folder of the images.")
_CROP = flags.DEFINE_integer("crop", 256, "Side of the centre crop (0: whole images).")
_STEPS = flags.DEFINE_integer("steps", 2000, "Iterations of both codecs (Cool-chic's "
                              "--n_itr, our num_steps).")
_LMBDAS = flags.DEFINE_list("lmbdas", ["0.001", "0.002"], "Lambdas (>= 2).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Our seeds; Cool-chic's repetitions.")
_CODECS = flags.DEFINE_list("codecs", [COOLCHIC, MORIC], "coolchic and/or moric_jax.")
_PRESET = flags.DEFINE_string("preset", "default", "Our preset (moric_jax.presets).")
_SET = flags.DEFINE_multi_string("set", [], "Our config overrides FIELD=VALUE.")
_HEARTBEAT = flags.DEFINE_float("heartbeat_s", 60.0, "Seconds between progress lines "
                                "while Cool-chic runs.")
_OUT = flags.DEFINE_string("out_dir", "runs/coolchic_side_by_side", "Output folder.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}")
  try:
    s = Settings(
        images=_IMAGES.value, out_dir=Path(_OUT.value),
        coolchic_dir=Path(_COOLCHIC_DIR.value) if _COOLCHIC_DIR.value else None,
        coolchic_python=Path(_COOLCHIC_PYTHON.value) if _COOLCHIC_PYTHON.value else None,
        kodak_dir=Path(_KODAK.value), crop=_CROP.value, steps=_STEPS.value,
        lmbdas=sorted(float(l) for l in _LMBDAS.value),
        seeds=[int(x) for x in _SEEDS.value], codecs=_CODECS.value,
        coolchic_cfg=_COOLCHIC_CFG.value, coolchic_args=_COOLCHIC_ARGS.value,
        preset=_PRESET.value, overrides=_SET.value, heartbeat_s=_HEARTBEAT.value)
  except ValueError as e:
    sys.exit(f"error: {e}")
  try:
    run(s)
  except SideBySideError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
