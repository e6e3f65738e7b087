"""``moric`` command line: encode / decode / info of ``.moric`` files.

  moric encode IN -o OUT.moric [--config FILE] [--preset default|fast|paper]
                               [--lmbda X] [--steps N] [--max-pixels N] [--json]
                               [--masks MASK.png | --regions auto:K]
                               [--region-lmbda 1=0.002,2=0.01] [--modulation S]
                               [--object-only]
  moric decode IN.moric -o OUT.png [--layers K] [--max-pixels N] [--json]
  moric info IN.moric [--json]

Regions (MoRIC): ``--masks`` takes a label image (0 = background, 1..N objects; a
binary mask is one object); ``--regions auto:K`` proposes up to K regions (background
included) from the image. ``decode --layers K`` renders only the first K layers
(1 = background only); a file cut inside its layers decodes to its complete ones (with
a warning). ``--object-only`` codes only the objects of ``--masks`` and decodes to a PNG
with the decoded mask as alpha.

User mistakes (missing or bad files, bad images, bad options, images or files above
the pixel limit) exit with status 1 and one line on stderr; ``--json`` prints one JSON
object on stdout. Ctrl-C (SIGINT) or SIGTERM exits with status 130 and one line; the
output file is only ever replaced whole (temp file + rename), so an interrupted run
leaves an existing output untouched.

Grey inputs (L, LA, 1, 16-bit grey) are coded as grey and decode to a grey PNG; notes
about lossy input conversions (16-bit to 8-bit, CMYK to RGB, ...) go to stderr (or
``"notes"`` in the JSON).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from moric_jax.model import modulation as modulation_lib

EXIT_USER_ERROR = 1


class UserError(Exception):
  """A mistake of the user, reported as one line on stderr."""


def _load_config(path: str | None, preset: str):
  from moric_jax import presets
  if path is None:
    return presets.PRESETS[preset]()
  p = Path(path)
  if not p.is_file():
    raise UserError(f"config file not found: {p}")
  spec = importlib.util.spec_from_file_location(f"_moric_config_{p.stem}", p)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # noqa: BLE001 - a broken user file
    raise UserError(f"cannot load config {p}: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config {p} has no get_config()")
  return module.get_config()


def _read_bytes(path: str) -> bytes:
  p = Path(path)
  if not p.exists():
    raise UserError(f"file not found: {p}")
  if not p.is_file():
    raise UserError(f"not a file: {p}")
  return p.read_bytes()


def _jsonable(d: dict) -> dict:
  out = {}
  for k, v in d.items():
    if hasattr(v, "shape") and getattr(v, "ndim", 0) > 1:
      continue  # images
    if isinstance(v, dict):
      v = _jsonable(v)
    elif hasattr(v, "item"):
      v = v.item()
    elif isinstance(v, tuple):
      v = list(v)
    out[k] = v
  return out


def cmd_encode(args) -> int:
  from moric_jax import api, image_io
  config = _load_config(args.config, args.preset)
  if args.lmbda is not None:
    if not (args.lmbda >= 0 and args.lmbda < float("inf")):
      raise UserError(f"--lmbda must be a finite number >= 0, got {args.lmbda}")
    config.lmbda = args.lmbda
  if args.steps is not None:
    if args.steps < 1:
      raise UserError(f"--steps must be >= 1, got {args.steps}")
    config.num_steps = args.steps
  if args.rdoq:
    config.quant.rdoq = True
  if args.max_pixels is not None:
    config.max_pixels = args.max_pixels
  if args.max_memory_gb is not None:
    if not args.max_memory_gb > 0:
      raise UserError(f"--max-memory-gb must be > 0, got {args.max_memory_gb}")
    config.max_memory_bytes = int(args.max_memory_gb * 1e9)
  _apply_region_flags(args, config)
  if args.checkpoint_dir:
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
      raise UserError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    config.checkpoint.dir = args.checkpoint_dir
    if args.checkpoint_every is not None:
      config.checkpoint.every_steps = args.checkpoint_every
  notes: list[str] = []
  image = image_io.load_image(args.input, max_pixels=config.get("max_pixels"),
                              keep_grey=True, notes=notes)
  if not args.json:
    for note in notes:
      print(f"moric encode: note: {note}", file=sys.stderr)
  bar = None
  on_chunk = None   # progress bar (not with --json)
  if not args.json:
    from tqdm import tqdm

    def on_chunk(stats):
      nonlocal bar
      if bar is None or stats.step < bar.n:   # a new training run (auto regions)
        if bar is not None:
          bar.close()
        bar = tqdm(total=int(config.num_steps), desc="encode", unit="step",
                   file=sys.stderr)
      bar.update(stats.step - bar.n)
      bar.set_postfix(psnr=f"{stats.psnr:.2f}", bpp=f"{stats.bpp:.3f}", phase=stats.phase)
  def on_plan(plan):
    if not args.json:
      print(f"moric encode: {image.shape[1]}x{image.shape[0]}: estimated peak memory "
            f"{plan['bytes'] / 1e9:.1f} GB of {plan['available'] / 1e9:.1f} GB, training "
            f"about {plan['seconds'] / 60:.1f} min on 2 CPU cores", file=sys.stderr)

  try:
    data, info = api.encode(image, config, on_chunk=on_chunk, on_plan=on_plan)
  finally:
    if bar is not None:
      bar.close()
  image_io.atomic_write_bytes(args.output, data)
  from moric_jax.eval import report as report_lib
  rep = report_lib.build(info, config, image=Path(args.input).stem,
                         target=image_io.to_uint8(image))
  info = _jsonable({**rep, **report_lib.extras(info, rep)})
  info["output"] = str(args.output)
  info["notes"] = notes
  if args.json:
    print(json.dumps(info))
  else:
    what = (f"{info['num_regions']} regions, {info['modulation']}"
            if info["num_regions"] > 1 else "1 region")
    if info.get("object_only"):
      what += f", object only ({info['pixels']} px)"
    print(f"{args.output}: {info['bytes']} bytes, {info['bpp']:.4f} bpp "
          f"(estimated {info['bpp_estimated']:.4f}, {what}), "
          f"PSNR {info['psnr']:.2f} dB, {info['encode_seconds']:.1f} s")
    if info["num_regions"] > 1:
      for r in info["regions"]:
        psnr = "-" if r["psnr"] is None else f"{r['psnr']:.2f} dB"
        print(f"  region {r['region']}: {r['pixels']} px, lambda {r['lmbda']:.4g}, "
              f"bits latents {r['bits_latents']:.0f} / LSN {r['bits_weights']:.0f} / "
              f"contour {r['bits_contour']:.0f}, PSNR {psnr}")
    choice = info.get("region_choice")
    if choice:
      print(f"  regions auto: kept {choice['kept']} (RD cost D + lambda R: "
            f"{choice['proposal_regions']} regions {choice['rd_cost_regions']:.6g}, "
            f"one region {choice['rd_cost_single']:.6g})")
  return 0


def _apply_region_flags(args, config) -> None:
  """``--masks``, ``--regions``, ``--region-lmbda``, ``--modulation`` -> config."""
  from moric_jax import presets
  from moric_jax.regions import masks
  if args.masks and args.regions:
    raise UserError("give either --masks or --regions, not both")
  if "regions" not in config:   # a config file from before regions existed
    config.regions = presets.default().regions
  for key, value in presets.default().regions.items():   # or before one of its fields
    if key not in config.regions:
      config.regions[key] = value
  has_regions = bool(args.masks or args.regions or config.regions.masks
                     or config.regions.auto)
  if (args.region_lmbda or args.modulation) and not has_regions:
    raise UserError("--region-lmbda and --modulation need regions: add --masks FILE "
                    "or --regions auto:K")
  if args.masks:
    if not Path(args.masks).is_file():
      raise UserError(f"mask file not found: {args.masks}")
    config.regions.masks = args.masks
  if args.regions:
    try:
      masks.parse_regions_spec(args.regions)
    except ValueError as e:
      raise UserError(str(e)) from None
    config.regions.auto = args.regions
  if args.region_lmbda:
    try:   # Region ids are checked against the region count at encode time.
      masks.parse_region_lmbdas(args.region_lmbda, masks.MAX_REGIONS)
    except ValueError as e:
      raise UserError(str(e)) from None
    config.regions.lmbdas = args.region_lmbda
  if args.modulation:
    config.model.modulation = args.modulation
  if getattr(args, "object_only", False):
    if not (args.masks or config.regions.masks):
      raise UserError("--object-only needs --masks FILE")
    config.regions.object_only = True


def cmd_decode(args) -> int:
  from moric_jax import image_io
  from moric_jax.decoder import decode as decoder
  from moric_jax.errors import BitstreamError
  data = _read_bytes(args.input)
  t0 = time.perf_counter()
  try:
    d = decoder.decode_file(data, max_pixels=args.max_pixels, layers=args.layers)
  except ValueError as e:   # --layers beyond the file's layers (BitstreamError re-raised)
    if isinstance(e, BitstreamError):
      raise
    raise UserError(str(e)) from None
  seconds = time.perf_counter() - t0
  t1 = time.perf_counter()
  image_io.save_png(args.output, d.image, compress_level=3)
  f = d.file
  out = {"decode_seconds": seconds, "parse_seconds": d.parse_seconds,
         "entropy_decode_seconds": d.entropy_seconds,
         "synthesis_seconds": d.synthesis_seconds,
         "write_seconds": time.perf_counter() - t1,
         "height": f.height, "width": f.width, "layers": d.layers,
         "num_regions": f.num_regions, "truncated": f.truncated,
         "object_only": f.object_only,
         "mode": bitstream_mode_name(d.image), "output": str(args.output)}
  if f.truncated:
    print(f"moric decode: warning: the file is truncated: {f.complete_layers} of "
          f"{len(f.rendered)} layers are complete; decoded those", file=sys.stderr)
  if args.json:
    print(json.dumps(out))
  else:
    print(f"{args.output}: {f.width}x{f.height}, {d.layers} layer(s), decoded in "
          f"{seconds * 1e3:.0f} ms (parse {d.parse_seconds * 1e3:.0f}, entropy "
          f"{d.entropy_seconds * 1e3:.0f}, synthesis {d.synthesis_seconds * 1e3:.0f})")
  return 0


def bitstream_mode_name(image) -> str:
  """PNG mode of a decoded image array."""
  channels = 1 if image.ndim == 2 else image.shape[2]
  return {1: "L8", 2: "LA8", 3: "RGB8", 4: "RGBA8"}[channels]


def cmd_info(args) -> int:
  from moric_jax.decoder import decode as decoder
  out = _jsonable(decoder.info(_read_bytes(args.input)))
  if args.json:
    print(json.dumps(out))
  else:
    for k, v in out.items():
      if k != "regions":
        print(f"{k}: {v}")
    for r in out.get("regions", []):
      lam = "-" if r["lmbda"] is None else f"{r['lmbda']:.4g}"
      print(f"region {r['region']}: {r['pixels']} px, lambda {lam}, bits latents "
            f"{r['bits_latents']:.0f} / LSN {r['bits_weights']:.0f} / contour "
            f"{r['bits_contour']}")
  return 0


def _pixel_limit(text: str) -> int:
  try:
    n = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
  if n < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
  return n


def build_parser() -> argparse.ArgumentParser:
  from moric_jax.coding.bitstream import DEFAULT_DECODE_MAX_PIXELS
  p = argparse.ArgumentParser(prog="moric", description="MoRIC JAX image codec")
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("encode", help="compress an image into a .moric file")
  e.add_argument("input")
  e.add_argument("-o", "--output", required=True)
  e.add_argument("--config", help="python file with get_config()")
  e.add_argument("--preset", default="default", choices=["default", "fast", "paper", "coolchic5"])
  e.add_argument("--lmbda", type=float)
  e.add_argument("--steps", type=int)
  e.add_argument("--rdoq", action="store_true",
                 help="rate-distortion-optimised rounding of the weights after training "
                      "(about -2%% of the file for +40%% encode time at 768x512)")
  e.add_argument("--max-pixels", type=_pixel_limit, metavar="N",
                 help="refuse images with more pixels (default: config.max_pixels)")
  e.add_argument("--max-memory-gb", type=float, metavar="GB",
                 help="refuse encodes estimated to need more memory (default: what the "
                      "machine has available)")
  e.add_argument("--checkpoint-dir", metavar="DIR",
                 help="save training state here; rerunning the same command resumes")
  e.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                 help="steps between checkpoints (default: config.checkpoint.every_steps)")
  e.add_argument("--masks", metavar="MASK.png",
                 help="region label image: 0 = background, 1..N objects")
  e.add_argument("--regions", metavar="auto:K",
                 help="propose up to K regions (background included) from the image")
  e.add_argument("--region-lmbda", metavar="1=X,2=Y",
                 help="per-region lambda (region 0 = background; default --lmbda)")
  e.add_argument("--object-only", action="store_true",
                 help="code only the object region(s) of --masks (no background); the "
                      "decoded PNG carries the decoded mask as alpha")
  e.add_argument("--modulation", choices=list(modulation_lib.SCHEMES),
                 help="region layout: moric (default: shared trunk, tiny region "
                      "networks) or a side-GMN scheme of the modulation ablation")
  e.add_argument("--json", action="store_true")
  e.set_defaults(func=cmd_encode)
  d = sub.add_parser("decode", help="decode a .moric file to PNG")
  d.add_argument("input")
  d.add_argument("-o", "--output", required=True)
  d.add_argument("--max-pixels", type=_pixel_limit, metavar="N",
                 default=DEFAULT_DECODE_MAX_PIXELS,
                 help=f"refuse files of larger images (default {DEFAULT_DECODE_MAX_PIXELS})")
  d.add_argument("--layers", type=_pixel_limit, metavar="K",
                 help="multi-region files: render only the first K layers (1 = background)")
  d.add_argument("--json", action="store_true")
  d.set_defaults(func=cmd_decode)
  i = sub.add_parser("info", help="show the header of a .moric file")
  i.add_argument("input")
  i.add_argument("--json", action="store_true")
  i.set_defaults(func=cmd_info)
  return p


def _terminate(signum, frame):
  raise KeyboardInterrupt


def _enable_compile_cache() -> None:
  """Reuses compiled XLA programs across encodes of the same size and model."""
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return  # The caller chose a cache already.
  cache = os.environ.get("MORIC_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "moric_jax", "xla")
  try:
    import jax
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  except Exception:  # A cache is an optimisation only.
    pass


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  if args.command == "encode":   # The decoder runs no JAX.
    _enable_compile_cache()
  old_term = None
  try:  # SIGTERM cleans up like Ctrl-C (temp files removed, one line, status 130).
    old_term = signal.signal(signal.SIGTERM, _terminate)
  except ValueError:  # not the main thread
    pass
  try:
    return _run(args)
  finally:
    if old_term is not None:
      signal.signal(signal.SIGTERM, old_term)


def _run(args) -> int:
  from moric_jax.errors import BitstreamError, ResourceError
  from moric_jax.image_io import ImageError
  # Library warnings (resumed checkpoint, rolled-back diverging steps) as one line each.
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter(f"moric {args.command}: %(message)s"))
  lib_logger = logging.getLogger("moric_jax")
  lib_logger.addHandler(handler)
  lib_logger.propagate = False
  try:
    return args.func(args)
  except (UserError, BitstreamError, ImageError, ResourceError) as e:
    print(f"moric {args.command}: error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  except OSError as e:  # unwritable output, disk full, ...
    print(f"moric {args.command}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
          file=sys.stderr)
    return EXIT_USER_ERROR
  except MemoryError:
    print(f"moric {args.command}: error: out of memory", file=sys.stderr)
    return EXIT_USER_ERROR
  except KeyboardInterrupt:
    print(f"moric {args.command}: interrupted", file=sys.stderr)
    return 130
  except _training_errors() as e:  # diverged, or a checkpoint dir of another run
    print(f"moric {args.command}: error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  finally:
    lib_logger.removeHandler(handler)


def _training_errors() -> tuple[type, ...]:
  """Errors of the training stage that are the user's to fix (only if it was loaded)."""
  mods = sys.modules
  errs: list[type] = []
  if "moric_jax.train.loop" in mods:
    errs.append(mods["moric_jax.train.loop"].TrainingDivergedError)
  if "moric_jax.train.checkpoints" in mods:
    errs.append(mods["moric_jax.train.checkpoints"].CheckpointMismatchError)
  return tuple(errs)


if __name__ == "__main__":
  sys.exit(main())
