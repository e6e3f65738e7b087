"""Standard CPU benchmark: 256x256 centre crops of four Kodak images, 4 lambdas.

About an hour on 2 CPU cores (lambda-batched training; measured 57 min on 2026-11-26,
with other jobs sharing the cores part of the time).

  python -m experiments.sweep --config=configs/bench_cpu.py --config.output_dir=runs/bench_cpu
"""
from configs import sweep


def get_config():
  config = sweep.get_config()
  config.sweep.images = ",".join(f"../shared/data/kodak/kodim{i:02d}.png" for i in (1, 4, 14, 23))
  config.sweep.crop = 256
  config.sweep.lmbdas = (0.0005, 0.001, 0.002, 0.004)
  config.num_steps = 1500
  config.quant.rdoq = True   # our best RD at this budget (WORKSPACE.md, sixth lever round)
  config.output_dir = "runs/bench_cpu"
  return config
