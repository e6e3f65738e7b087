import pytest

from configs import levers as levers_config
from experiments import levers
from moric_jax.sweeps import launch, rd


def test_lever_config_carries_every_base_field_and_the_overrides(tmp_path):
  cfg = levers_config.get_config()
  cfg.base.seed = 1
  cfg.base.train.chunk_size = 77
  lever = levers.lever_config(cfg.base, tmp_path / "soap",
                              "train.clip_norm=2.0; train.optimizer=soap;"
                              "model.lsn.hidden=(48,);train.warmup.candidates=(5, 2)")
  assert lever.output_dir == str(tmp_path / "soap")
  assert tuple(lever.sweep.lmbdas) == (0.0005, 0.001, 0.002, 0.004)
  assert lever.seed == 1 and lever.train.chunk_size == 77   # nothing lost on the way
  assert lever.train.clip_norm == 2.0 and lever.train.optimizer == "soap"
  assert tuple(lever.model.lsn.hidden) == (48,)
  assert tuple(lever.train.warmup.candidates) == (5, 2)
  assert cfg.base.train.optimizer != "soap" or cfg.base.train.clip_norm != 2.0  # a copy
  assert cfg.base.output_dir != lever.output_dir
  with pytest.raises(ValueError, match="key=value"):
    levers.lever_config(cfg.base, tmp_path, "train.optimizer")
  with pytest.raises(ValueError, match="no field"):  # a typo, in any front end
    levers.lever_config(cfg.base, tmp_path, "train.optimiser=soap")


def _rows(path, points, codec=None):
  rows = []
  for i, (b, p) in enumerate(points):
    row = {"image": "x", "bpp": b, "psnr": p, "encode_seconds": 10.0}
    row.update({"codec": codec, "quality": i} if codec else {"lmbda": 0.01 / (i + 1)})
    rows.append(row)
  fields = list(rows[0])
  launch.write_csv(path, rows, fields)


def test_summary_bd_rates_against_base_and_anchor(tmp_path):
  curve = [(0.3, 30.0), (0.5, 32.0), (0.7, 33.5), (0.9, 34.5)]
  for name, scale in (("base", 1.0), ("better", 0.8)):
    (tmp_path / name).mkdir()
    _rows(tmp_path / name / "results.csv", [(b * scale, p) for b, p in curve])
  _rows(tmp_path / "base" / "baselines.csv", [(b * 1.25, p) for b, p in curve], "avif")
  table = {r["lever"]: r for r in levers.summarise(tmp_path, ["base", "better"], 0.49)}
  assert table["better"]["bd_vs_base"] == pytest.approx(-20.0, abs=0.5)
  assert table["base"]["bd_vs_avif"] == pytest.approx(-20.0, abs=0.5)
  assert "bd_vs_base" not in table["base"]
  import math   # 0.49 bpp between (0.3, 30) and (0.5, 32), linear in log-rate
  assert table["base"]["psnr_at"] == pytest.approx(
      30 + 2 * math.log(0.49 / 0.3) / math.log(0.5 / 0.3))
  md = levers.markdown(list(table.values()), 0.49)
  assert "| better |" in md and "-20.0%" in md
  assert levers.interpolate_psnr([0.3, 0.5], [30, 32], 0.9) is None


def test_equal_steps_comparison_interpolates_our_curve():
  from experiments import equal_steps
  rows = [{"image": "kodim23", "bpp": b, "psnr": p}
          for b, p in ((0.4, 33.0), (0.6, 35.0), (0.8, 36.0))]
  rows.append({"image": "other", "bpp": 0.5, "psnr": 30.0})
  (line,) = equal_steps.compare(rows, {"kodim23": (0.5, 35.5, "ref"), "absent": (1, 1, "x")})
  assert line["psnr_at_ref_bpp"] == pytest.approx(34.0)
  assert line["bpp_for_ref_psnr"] == pytest.approx(0.7)
  (far,) = equal_steps.compare(rows, {"kodim23": (0.9, 40.0, "ref")})
  assert far["psnr_at_ref_bpp"] is None and far["bpp_for_ref_psnr"] is None
  assert "n/a" in equal_steps.markdown([far], 2000)
