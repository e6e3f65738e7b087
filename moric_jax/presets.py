"""Encoder presets as ml-collections ConfigDicts (used by configs/*.py and the CLI):
the one place the codec's defaults are written. Each preset is locked (no new fields).

Sub-dicts of ``config.model`` are exactly the constructor arguments of the modules
(``LSN(**config.model.lsn)``).
"""
import ml_collections


def default() -> ml_collections.ConfigDict:
  """CPU-friendly single-region codec (C3-sized model); a 768x512 image in minutes."""
  config = ml_collections.ConfigDict()
  config.image_path = ""
  config.output_dir = "runs/compress"
  config.seed = 0
  config.lmbda = 0.002          # RD trade-off: loss = MSE + lmbda * bpp.
  config.num_steps = 1000       # Total training steps (~5.5 min for 768x512 on 2 cores).
  config.max_pixels = 4096 * 4096
  config.max_memory_bytes = 0   # Refuse encodes estimated to need more (0 = machine's).

  config.model = ml_collections.ConfigDict()
  config.model.latents = dict(num_grids=7, q_step=0.4, base_gain=20.0, gain_growth=1.0)
  config.model.arm_context = dict(rows=3, cols=3)          # 24 causal neighbours.
  config.model.arm = dict(hidden=(18, 18), activation="relu")
  config.model.lsn = dict(hidden=(18, 18), num_res_convs=2, kernel_size=3,
                          activation="gelu")
  # Latents -> frame: "learned" 2x steps (model/upsampling.py; -2% BD-rate vs the fixed
  # "bilinear", WORKSPACE.md "Recipe levers").
  config.model.upsampling = "learned"
  # Multi-region codec only (used when the image has object regions). "moric": the
  # authors' modular layout (model/region_net.py): the GMN is the synthesis trunk above
  # plus a shared aggregator, each region's LSN a tiny network of region_net.width
  # channels on its pixel coordinates (width 3: 57 weights). The side-GMN schemes
  # (none|film|concat_input|progressive_concat: a whole LSN per region, an extra GMN of
  # config.model.gmn) stay for the modulation ablation.
  config.model.modulation = "moric"
  config.model.region_net = dict(width=3, activation="gelu")
  config.model.gmn = dict(width=8, mod_width=4, activation="gelu")

  # Regions (MoRIC): a mask image (0 = background, 1..N objects), or "auto:K" to
  # propose up to K regions; per-region lambdas "1=0.002,2=0.01"; weight of the
  # layer-0 (background alone over the whole frame) distortion in the loss; code only
  # the objects (no background latents, network or pixels); frozen_networks: a
  # diagnostic, the region networks and the aggregator stay at their initial values
  # (every region renders the trunk's image: the 1-region codec plus the contours).
  config.regions = ml_collections.ConfigDict(
      dict(masks="", auto="", lmbdas="", layer0_weight=0.05, object_only=False,
           frozen_networks=False))

  # Training: Cool-chic 5's encoder procedure (-16% to -18% BD-rate against the recipe
  # before it on the kodim23 crop at 2,000 steps: WORKSPACE.md, "Compression at scale";
  # ../shared/notes/coolchic5-recipe.md). ``coolchic5_procedure`` is the same procedure
  # as a function, for configs built from elsewhere (plus weight RDOQ).
  config.train = ml_collections.ConfigDict()
  config.train.learning_rate = 1e-2
  config.train.latent_lr_scale = 1.0       # Multiplies the learning rate of the latents.
  config.train.clip_norm = 0.1
  config.train.clip_scope = "networks"     # Clip the networks' gradients | "global".
  config.train.weight_decay = 0.01         # Decoupled weight decay of the networks.
  # The final phase: its share of the kept run's steps (ste_fraction), or exactly
  # final_steps steps (Cool-chic 5: 500); one of the two, the other None.
  config.train.ste_fraction = 0.05
  config.train.final_steps = None
  config.train.ste_learning_rate = 1e-4
  # "continue": the final phase goes on with the soft phase's optimizer state;
  # "fresh": it starts a new one (Cool-chic 5: every phase is a new optimizer).
  config.train.final_optimizer = "continue"
  # Final phase (the last ste_fraction): "frozen" (hard symbols fixed, only the
  # networks train) | "ste" (latents move by straight-through gradients); its learning
  # rate "cosine" (from ste_learning_rate to 0) | "constant" (ste_learning_rate).
  config.train.final_phase = "frozen"
  config.train.final_lr_schedule = "cosine"
  # Networks: soap | adam (latents: always Adam). SOAP measured -18.7% BD-rate vs Adam
  # at 1000 steps on the kodim23 256x256 crop (WORKSPACE.md, "Recipe levers").
  config.train.optimizer = "soap"
  config.train.soap = ml_collections.ConfigDict(
      dict(b1=0.95, b2=0.95, shampoo_beta=0.95, precondition_every=10))
  config.train.temperature = (0.35, 0.08)  # Soft-round temperature, annealed linearly.
  config.train.noise = "gaussian"          # Soft-phase noise: gaussian | kumaraswamy.
  config.train.kumaraswamy = (2.0, 1.0)    # Noise shape a: 1 = uniform.
  config.train.gaussian_std = (0.22, 0.15)  # Gaussian noise std, annealed linearly.
  config.train.noise_from_lmbda = False    # Gaussian start std from lambda (Cool-chic 5).
  # What rate and ARM context see in the soft phase: "one_tensor" (s(s(y) + n) for all
  # three, Cool-chic 5) | "two_tensor" (s(y) + n; the synthesis s(s(y) + n)).
  config.train.proxy = "one_tensor"
  # Distortion on the output clipped to [0, 1] while training (Cool-chic 5).
  config.train.clamp_output = True
  # Warm-up: candidate initialisations per stage, each stage round(fraction * num_steps)
  # steps (or steps=(s1, s2), or budget_steps by budget_limits: train/warmup.py); the
  # best go on (their steps count in num_steps). () = no warm-up. schedule "shared":
  # the warm-up steps are the soft phase's first (its schedules, one optimizer state);
  # "own" (Cool-chic 5): constant temperature, noise_std (None: from lambda) and
  # learning rate, Adam latent_betas for the latents, the SOAP basis refreshed every
  # precondition_every steps; the soft phase then starts with a fresh optimizer state
  # and its schedules count from its own first step (train/plan.py, WarmupSettings).
  config.train.warmup = ml_collections.ConfigDict(dict(
      candidates=(5, 2), fraction=0.025, steps=None, budget_steps=(), budget_limits=(),
      schedule="shared", temperature=0.35, noise_std=None, latent_betas=(0.9, 0.999),
      precondition_every=10))
  # Hard-loss check of the soft phase every K steps, and the best checked model
  # reloaded when it ends (Cool-chic 5: 100; train/hard_check.py). 0 = off.
  config.train.hard_check_every = 0
  config.train.weight_delta = 1.0 / 128    # Step used to estimate weight bits in the loss.
  config.train.chunk_size = 50             # Steps fused in one jit-compiled lax.scan.
  # Memory bounds for large images: above these sizes the LSNs run in row bands of
  # ~band_pixels pixels and the ARM in chunks of arm_chunk latents, rematerialised in
  # the backward pass (jax.checkpoint). Smaller images run whole (fastest).
  config.train.band_pixels = 1 << 19
  config.train.arm_chunk = 1 << 19

  # Resumable encodes: orbax checkpoints of the training state ("" = off).
  config.checkpoint = ml_collections.ConfigDict(dict(dir="", every_steps=200))

  config.quant = ml_collections.ConfigDict()
  # Candidate weight step sizes (log-spaced) searched per network after training.
  config.quant.delta_min = 2.0**-12
  config.quant.delta_max = 2.0**-1
  config.quant.num_deltas = 16
  # Then each tensor's own step, delta * factor / 16 (weight_search.refine_tensor_steps;
  # file version 5).
  config.quant.tensor_steps = True
  # Then single integer weights one step towards zero where the real RD cost falls
  # (weight_search.round_towards_zero; one evaluation per nonzero weight, ~1,300 per
  # lambda: -3.3% BD-rate at 256x256, -2.2% of the file for +123 s at 768x512, so off
  # here to keep a 768x512 encode near 5 minutes; on in `paper`; CLI --rdoq).
  config.quant.rdoq = False
  # Trials of the weight searches evaluated per call, over every codec of a stack
  # (train/search_batches.py): 1 on a CPU; a GPU wants tens (experiments/gpu_check.py).
  config.quant.search_batch = 1
  # Locked: a misspelt field (``config.train.lerning_rate = ...``, or the same as a
  # ``--config.`` flag) is an error, not a new field the encoder never reads. Configs
  # that add their own fields (a sweep's ``sweep`` and ``launch``) do it in
  # ``with config.unlocked():``.
  return config.lock()


def fast() -> ml_collections.ConfigDict:
  """Few steps, for smoke tests and quick looks (lower quality)."""
  config = default()
  config.num_steps = 200
  config.train.chunk_size = 25
  return config


def paper_kodak() -> ml_collections.ConfigDict:
  """Paper-scale step count for Kodak on a GPU/TPU."""
  config = default()
  config.num_steps = 100_000
  config.train.chunk_size = 500
  config.quant.rdoq = True   # minutes at most, against hours of training
  return config


def coolchic5_procedure(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Cool-chic 5's encoder procedure on ``config`` (in place; returned): one
  quantization proxy ``s(s(y) + n)`` with Gaussian noise 0.22 -> 0.15 and temperature
  0.35 -> 0.08, a final 5% of hard symbols with the latents frozen (cosine from 1e-4),
  gradient clipping 0.1 and weight decay 0.01 on the networks only, the output clamped
  to [0, 1] in the distortion, warm-up 5 -> 2
  candidates (50 steps each at 2,000 steps), weight RDOQ
  (../shared/notes/coolchic5-recipe.md)."""
  t = config.train
  t.proxy = "one_tensor"
  t.noise = "gaussian"
  t.gaussian_std = (0.22, 0.15)
  t.temperature = (0.35, 0.08)
  t.final_phase = "frozen"
  t.final_lr_schedule = "cosine"
  t.ste_fraction = 0.05
  t.clip_scope = "networks"
  t.clip_norm = 0.1
  t.weight_decay = 0.01
  t.clamp_output = True
  t.final_steps = None
  t.warmup.candidates = (5, 2)
  t.warmup.fraction = 0.025
  config.quant.rdoq = True
  return config


def coolchic5_phases(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Cool-chic 5.0.1's intra preset phase for phase on ``config`` (in place; returned),
  on top of ``coolchic5_procedure``: warm-up 5 -> 2 candidates of 50 steps each if
  ``num_steps`` < 4,000, 100 below 9,000, 200 below 12,000, else 400 (out of the
  budget), on its own constant settings (temperature 0.35, Gaussian noise of std
  ``(0.747 - 0.432 log10 lambda) / 10``, constant learning rate, latent Adam betas
  (0.725, 0.97), SOAP basis refreshed every step); the core (soft) phase with a fresh
  optimizer, temperature 0.35 -> 0.08, noise 0.22 -> 0.15 and cosine learning rate
  from 1e-2 over its own steps, hard-loss check every 100 steps and the best reloaded;
  exactly 500 final steps of hard symbols with the latents frozen, a fresh optimizer
  and cosine learning rate from 1e-4; weight steps and RDOQ. Still not Cool-chic's:
  the training loss counts the estimated weight bits (Cool-chic trains on the latent
  rate alone), and the schedules move every step (Cool-chic's every 100)."""
  coolchic5_procedure(config)
  t = config.train
  t.warmup.candidates = (5, 2)
  t.warmup.budget_steps = (50, 100, 200, 400)
  t.warmup.budget_limits = (4000, 9000, 12000)
  t.warmup.schedule = "own"
  t.warmup.temperature = 0.35
  t.warmup.noise_std = None
  t.warmup.latent_betas = (0.725, 0.97)
  t.warmup.precondition_every = 1
  t.noise_from_lmbda = False          # the core phase: 0.22 -> 0.15
  t.ste_fraction = None
  t.final_steps = 500
  t.final_optimizer = "fresh"
  t.hard_check_every = 100
  return config


def coolchic5() -> ml_collections.ConfigDict:
  """Parity preset: Cool-chic 5.0.1's intra preset phase for phase
  (``coolchic5_phases``: its warm-up, core and 500-step final phase, hard-loss checks,
  RDOQ) and its synthesis trunk (one 48-wide ReLU layer, the linear projection to 3
  channels, two 3x3 residual convs) on this codec at Cool-chic's 10,000 steps. Not yet
  the rest of its HOP decoder: no hyperlatents, no inter-feature context, no
  residual/stabilised ARM, no per-grid pre-filters, zero padding (WORKSPACE.md,
  "Compression at scale")."""
  config = coolchic5_phases(default())
  config.num_steps = 10_000
  config.train.chunk_size = 100
  config.model.lsn.hidden = (48,)
  config.model.lsn.activation = "relu"
  return config


PRESETS = {"default": default, "fast": fast, "paper": paper_kodak, "coolchic5": coolchic5}
