"""Full Kodak (24 images) at paper-scale steps, for a GPU/TPU: 144 encodes.

One job per (image, lambda) (``batch_lmbdas=False``), each checkpointing its training
state every 2000 steps, so a preempted or timed-out job is requeued and resumes from
its last checkpoint. On a SLURM cluster:

  python -m experiments.sweep --config=configs/bench_kodak_gpu.py \
      --config.launcher=slurm --config.slurm.partition=gpu

In one process (one GPU, days): ``--config.launcher=inline``. Results:
``runs/bench_kodak_gpu/{results.csv,results.md,rd.png,bd.json}``.
"""
from configs import sweep
from moric_jax import presets


def get_config():
  config = sweep.get_config()
  paper = presets.paper_kodak()
  config.num_steps = paper.num_steps
  config.train.chunk_size = paper.train.chunk_size
  config.quant.rdoq = paper.quant.rdoq
  config.images = "../shared/data/kodak/kodim*.png"
  config.crop = 0
  config.lmbdas = (0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008)
  config.batch_lmbdas = False            # one resumable job per (image, lambda)
  config.checkpoint.every_steps = 2000
  config.output_dir = "runs/bench_kodak_gpu"
  config.slurm.gpus_per_task = 1
  config.slurm.cpus_per_task = 8
  config.slurm.mem_gb = 32
  config.slurm.timeout_min = 240         # per attempt; requeued (and resumed) after
  config.slurm.array_parallelism = 48
  return config
