"""Recipe levers, each measured alone against the same base (issue 12).

  python -m experiments.levers --config=configs/levers.py --config.output_dir=runs/levers

Every lever is the base sweep (``base``: the kodim23 256x256 centre crop, 4 lambdas,
``num_steps`` steps) with its own config overrides; ``experiments.levers`` runs one
``experiments.sweep`` per lever (real files, resumable) and writes ``levers.md``: BD-rate
of each lever against the base and against AVIF, and the PSNR at 0.49 bpp.
"""
import ml_collections

from configs import sweep


def get_config():
  config = ml_collections.ConfigDict()
  base = sweep.get_config()
  base.sweep.images = "../shared/data/kodak/kodim23.png"
  base.sweep.crop = 256
  base.sweep.lmbdas = (0.0005, 0.001, 0.002, 0.004)
  base.num_steps = 1000
  base.sweep.baselines = ("webp", "avif")
  config.base = base
  config.output_dir = "runs/levers"
  # Overrides applied to every lever (levers already kept), e.g. "train.optimizer=soap".
  config.base_overrides = ""
  # name -> "key=value;key=value" overrides of the base (dotted config keys).
  config.levers = ml_collections.ConfigDict({
      "base": "",
      "soap": "train.optimizer=soap",
      "gaussian_noise": "train.noise=gaussian",
      "noise_from_lmbda": "train.noise=gaussian;train.noise_from_lmbda=True",
      "warmup": "train.warmup.candidates=(5, 2);train.warmup.fraction=0.025",
      "wide_lsn": "model.lsn.hidden=(48,);model.lsn.activation=relu",
      "latent_lr_half": "train.latent_lr_scale=0.5",
      "latent_lr_quarter": "train.latent_lr_scale=0.25",
      "latent_lr_double": "train.latent_lr_scale=2.0",
      "ste_quarter": "train.ste_fraction=0.25",
      "ste_short": "train.ste_fraction=0.03",
      "ste_none": "train.ste_fraction=0.0",
      "temperature": "train.temperature=(0.35, 0.08)",
      "lr_double": "train.learning_rate=0.02",
      "small_nets": "model.arm.hidden=(12, 12);model.lsn.hidden=(12, 12)",
      "soap_every_5": "train.soap.precondition_every=5",
      "learned_upsampling": "model.upsampling=learned",
      "arm_small": "model.arm.hidden=(12, 12)",
      "arm_large": "model.arm.hidden=(24, 24)",
      "lsn_large": "model.lsn.hidden=(24, 24)",
      "arm_context_12": "model.arm_context.rows=2;model.arm_context.cols=2",
      "grids_6": "model.latents.num_grids=6",
      "gain_growth_125": "model.latents.gain_growth=1.25",
      "q_step_03": "model.latents.q_step=0.3",
      "q_step_06": "model.latents.q_step=0.6",
      "lsn_relu": "model.lsn.activation=relu",
      "no_clip": "train.clip_norm=1e9",
      "no_tensor_steps": "quant.tensor_steps=False",
      "rdoq": "quant.rdoq=True",
  })
  config.report_bpp = 0.49   # PSNR reported at this rate (Cool-chic 5's kodim23 point)
  config.only = ""   # comma-separated lever names to run (default: all)
  return config
