import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from moric_jax import presets
from moric_jax.eval import complexity
from moric_jax.model.arm import ARM
from moric_jax.model.codec import Codec
from moric_jax.model.lsn import LSN

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["default", "fast", "paper_kodak"])
def test_config_files_load(name):
  spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config()
  assert config.num_steps > 0 and config.lmbda > 0
  # Sub-dicts are exactly the module constructor arguments.
  ARM(**config.model.arm)
  LSN(**config.model.lsn)
  codec = Codec.from_config(config.model, 40, 24)
  params = codec.init(jax.random.PRNGKey(0))
  assert len(params["latents"]) == config.model.latents.num_grids
  rd = jax.jit(lambda p, x: codec.rd_terms(p, x, 0.01, 1 / 128, mode="hard"))
  loss, aux, img = rd(params, jnp.zeros((40, 24, 3)))
  assert img.shape == (40, 24, 3) and jnp.isfinite(loss) and jnp.isfinite(aux["bpp_latents"])


def test_presets_registry():
  assert set(presets.PRESETS) == {"default", "fast", "paper", "coolchic5"}
  assert (presets.fast().num_steps < presets.default().num_steps
          < presets.coolchic5().num_steps < presets.paper_kodak().num_steps)
  # The default trains with Cool-chic 5's procedure, RDOQ off; paper and coolchic5 on.
  d = presets.default()
  assert d.train.proxy == "one_tensor" and d.train.final_phase == "frozen"
  assert not d.quant.rdoq and presets.paper_kodak().quant.rdoq and presets.coolchic5().quant.rdoq
  assert d.train.hard_check_every == 0 and presets.coolchic5().train.hard_check_every == 100


def test_macs_per_pixel_c3_sized_model():
  macs = complexity.macs_per_pixel(Codec.from_config(presets.default().model, 512, 768))
  # LSN: 7*18 + 18*18 + 18*3 + 2 * 81 = 666; ARM: 792 per latent x ~1.33 latents/px.
  assert macs["lsn"] == 666 and macs["gmn"] == 0
  assert 1040 < macs["arm"] < 1060
  assert macs["total"] < 2000


@pytest.mark.parametrize("scheme,lsn,gmn", [("none", 666, 0),
                                            ("progressive_concat", 810, 184)])
def test_macs_per_pixel_multi_region(scheme, lsn, gmn):
  import numpy as np
  config = presets.default()
  config.model.modulation = scheme
  m = np.zeros((64, 64), bool)
  m[8:24, 16:48] = True                   # a 16x32 box: 512 px besides the background
  codec = Codec.from_config(config.model, 64, 64, [m])
  macs = complexity.macs_per_pixel(codec)
  # progressive: LSN (7+4)*18 + (18+4)*18 + 18*3 + 2*81 over the frame and the box;
  # GMN 2 * (in*8 + 8*4) once over the frame.
  assert macs["synthesis"] == pytest.approx(gmn + lsn * (4096 + 512) / 4096)
  assert macs["arm"] == pytest.approx(792 * codec.num_latents / 4096)


def _load_config(name: str):
  spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


@pytest.mark.parametrize("build", [*presets.PRESETS.values(),
                                   lambda: _load_config("sweep"),
                                   lambda: _load_config("ablation")])
def test_configs_are_locked_a_misspelt_field_is_an_error(build):
  config = build()
  config.train.learning_rate = 0.02          # a field it has: set
  with pytest.raises(AttributeError, match="learning_rate"):
    config.train.lerning_rate = 0.02         # a typo: not a silent new field
  with pytest.raises(AttributeError):
    config.num_step = 10


@pytest.mark.parametrize("name", ["sweep", "ablation", "bench_cpu", "bench_kodak_gpu",
                                  "equal_steps"])
def test_sweep_configs_keep_codec_sweep_and_launch_fields_apart(name):
  """A sweep config is the codec preset's fields, plus ``sweep`` and ``launch``
  sub-dicts; a job trains with the codec fields alone (``rd.codec_config``)."""
  from moric_jax.sweeps import launch, rd
  config = _load_config(name)
  codec_keys = set(presets.default().keys())
  assert set(config.keys()) == codec_keys | {"sweep", "launch"}
  assert set(config.launch.keys()) == set(launch.launch_fields().keys())
  assert set(rd.codec_config(config)) == codec_keys
  # What and where a sweep launches is not in its config hash; the crop is.
  h = rd.config_hash(config)
  other = config.copy_and_resolve_references()
  other.launch.launcher, other.sweep.lmbdas = "slurm", (0.5, 0.7)
  other.output_dir = "elsewhere"
  if "images" in other.sweep:
    other.sweep.images = "x.png"
  assert rd.config_hash(other) == h
  other.sweep.crop = 17
  assert rd.config_hash(other) != h
  other.sweep.crop, other.train.learning_rate = config.sweep.crop, 0.123
  assert rd.config_hash(other) != h
