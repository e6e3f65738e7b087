"""Issue 25, next round: decoder and procedure levers on top of Cool-chic 5's full procedure.

  python -m experiments.levers --config=configs/levers_scale_decoder.py --config.output_dir=runs/levers_scale_decoder

Yardstick (a) again (kodim23 256x256 centre crop, 2,000 steps, lambdas 0.001 and 0.002,
real files); the base is the full procedure with the clamped output and weight RDOQ
(the ``paper`` recipe at this budget). Each lever is alone against that base.
"""
from configs import levers_scale

FULL = levers_scale.WARM + ";train.clamp_output=True;quant.rdoq=True"


def get_config():
  config = levers_scale.get_config()
  config.output_dir = "runs/levers_scale_decoder"
  config.levers = {
      "base": "",
      # Cool-chic's synthesis trunk: one 48-wide ReLU 1x1 layer, then the linear
      # projection to 3 channels and the two 3x3 residual convs (as ours).
      "wide_lsn_relu": "model.lsn.hidden=(48,);model.lsn.activation=relu",
      # Cool-chic 5's latent gain at these lambdas (symbol = round(16 theta)).
      "gain_16": "model.latents.base_gain=16.0",
      # Cool-chic 5's hard-loss check every 100 steps, best model reloaded before the
      # final phase (train/hard_check.py).
      "hard_check_100": "train.hard_check_every=100",
  }
  config.base_overrides = FULL
  return config
