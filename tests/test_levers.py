import pytest

from configs import levers as levers_config
from experiments import levers
from moric_jax.sweeps import launch, rd


def test_sweep_command_carries_base_and_lever_overrides(tmp_path):
  cfg = levers_config.get_config()
  cmd = levers.sweep_command(cfg.base, tmp_path / "soap",
                             "train.clip_norm=2.0;train.optimizer=soap")
  assert cmd[1:3] == ["-m", "experiments.sweep"]
  assert f"--config.output_dir={tmp_path / 'soap'}" in cmd
  assert "--config.lmbdas=(0.0005, 0.001, 0.002, 0.004)" in cmd
  assert "--config.baselines=('webp', 'avif')" in cmd
  assert cmd[-2:] == ["--config.train.clip_norm=2.0", "--config.train.optimizer=soap"]
  with pytest.raises(ValueError, match="key=value"):
    levers.sweep_command(cfg.base, tmp_path, "train.optimizer")
  # Any other field of the base that differs from the sweep's default goes along
  # (levers.py forwarded only the five above, and --config.base.seed=1 was lost).
  assert not any(c.startswith("--config.seed=") for c in cmd)
  cfg.base.seed = 1
  cfg.base.train.chunk_size = 77
  cmd = levers.sweep_command(cfg.base, tmp_path / "s1", "")
  assert "--config.seed=1" in cmd and "--config.train.chunk_size=77" in cmd
  assert not any(c.startswith("--config.output_dir=runs") for c in cmd)


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
  assert table["base"]["psnr_at"] == pytest.approx(31.9)
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
