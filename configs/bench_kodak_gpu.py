"""Full Kodak (24 images) at paper-scale steps, for a GPU/TPU: 144 encodes.

One job per (image, lambda) (``batch_lmbdas=False``), each checkpointing its training
state every 2000 steps, so a preempted or timed-out job is requeued and resumes from
its last checkpoint. On a SLURM cluster:

  python -m experiments.sweep --config=configs/bench_kodak_gpu.py \
      --config.launch.launcher=slurm --config.launch.slurm.partition=gpu

In one process (one GPU, days): ``--config.launch.launcher=inline``. Results:
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
  config.sweep.images = "../shared/data/kodak/kodim*.png"
  config.sweep.crop = 0
  config.sweep.lmbdas = (0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008)
  config.sweep.batch_lmbdas = False            # one resumable job per (image, lambda)
  config.checkpoint.every_steps = 2000
  config.output_dir = "runs/bench_kodak_gpu"
  config.launch.slurm.gpus_per_task = 1
  config.launch.slurm.cpus_per_task = 8
  config.launch.slurm.mem_gb = 32
  config.launch.slurm.timeout_min = 240         # per attempt; requeued (and resumed) after
  config.launch.slurm.array_parallelism = 48
  return config
