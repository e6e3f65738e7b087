"""The one ``.moric`` writer: quantized networks, latents and contours -> bytes.

Plain arrays in (no JAX): ``api.write_file`` feeds it a trained ``CompressResult``,
tests feed it random integers. The reader is ``bitstream.read`` + ``moric_jax.decoder``.
"""
from __future__ import annotations

import numpy as np

from moric_jax.coding import bitstream, code_lengths, integer_arm, rans, wavefront
from moric_jax.coding import network_layout, weights_coding


def write(height: int, width: int, arch: bitstream.Architecture, *, mode: int,
          modulation: str, gmn: dict | None, contours: list[bytes], lmbdas,
          deltas: dict, int_weights: dict, symbols: list[np.ndarray],
          owners: np.ndarray, coded: list[np.ndarray] | None = None,
          object_only: bool = False, factors: dict | None = None) -> tuple[bytes, dict]:
  """Entropy codes everything -> ``(bytes, bits)``.

  ``deltas`` / ``int_weights``: ``bitstream.shared_networks`` (``arm``, ``gmn`` if
  ``modulation != "none"``, ``upsampling`` if ``arch.has_upsampling_filters``) and
  ``lsn`` (a list, one per rendered region: background first unless ``object_only``;
  object LSNs are coded as their difference from LSN 0's integers on their own step,
  ``network_layout.reference_residual``);
  ``factors``: per-tensor step factors, shaped like ``deltas`` with a tuple per
  network (``weights_coding.tensor_steps``; ``None`` or a missing entry: all 16);
  ``gmn``: ``width``, ``mod_width``, ``activation``; ``lmbdas``: ``(R,)``;
  ``symbols``: integer grids (0 where not ``coded``); ``owners``: ``(N,)`` owning
  region of every latent (grids raveled). ``bits``: ideal code lengths under the
  integer model: ``latents`` (total), ``region_latents`` ``(R,)``, ``shared`` (ARM,
  GMN, upsampling), ``lsn`` (per rendered region), ``contours`` (per object, 8 * bytes).
  """
  f32 = bitstream.f32
  num_regions = len(contours) + 1
  leaves = lambda tree: [np.asarray(k) for k in network_layout.flatten(tree)]
  factors = factors or {}

  def factors_of(name, tree, j=None):
    got = factors.get(name)
    got = got[j] if (j is not None and got is not None) else got
    return tuple(int(x) for x in got) if got else weights_coding.unit_factors(
        len(leaves(tree)))

  d_arm = f32(deltas["arm"])
  arm_layers = integer_arm.dense_layers(int_weights["arm"])
  arm_steps = weights_coding.tensor_steps(d_arm, factors_of("arm", int_weights["arm"]))
  frac = integer_arm.choose_frac_bits([
      (np.asarray(k, np.float64) * dk, b) for (k, b), (dk, _) in zip(
          arm_layers, integer_arm.layer_steps(arm_steps, len(arm_layers)))])
  iarm = integer_arm.from_quantized(arm_layers, arm_steps, frac)
  symbols = [np.asarray(s) for s in symbols]
  # Base payload (a stack): latents first (decoded last), then the weights.
  coder = rans.new_encoder()
  latent_bits, per_latent = wavefront.encode_latents(
      coder, iarm, symbols, arch.context_rows, arch.context_cols, coded, per_latent=True)
  lsn_ints = list(int_weights["lsn"])
  lsn_deltas = [f32(d) for d in deltas["lsn"]]
  lsn_factors = [factors_of("lsn", t, j) for j, t in enumerate(lsn_ints)]
  lsn_steps = [weights_coding.tensor_steps(d, fj) for d, fj in zip(lsn_deltas, lsn_factors)]
  has_gmn = modulation != "none"
  has_ups = arch.has_upsampling_filters
  shared = bitstream.shared_networks(has_gmn, arch)
  base_nets = [int_weights[n] for n in shared]
  base_factors = [f for n in shared for f in factors_of(n, int_weights[n])]
  num_shared = len(base_nets)
  if not object_only:
    base_nets.append(lsn_ints.pop(0))
    base_factors += list(lsn_factors.pop(0))
  per_net = [leaves(tree) for tree in base_nets]
  base_scales, _ = weights_coding.encode_tensors(coder, [k for t in per_net for k in t])
  net_bits, i = [], 0
  for t in per_net:
    net_bits.append(code_lengths.tensors_bits(t, base_scales[i:i + len(t)]))
    i += len(t)
  shared_bits = sum(net_bits[:num_shared])
  lsn_bits = [] if object_only else [net_bits[-1]]
  layers = []
  obj = slice(0, None) if object_only else slice(1, None)
  for r, (tree, d, steps, fj) in enumerate(zip(lsn_ints, lsn_deltas[obj], lsn_steps[obj],
                                               lsn_factors), start=1):
    if not object_only:   # object LSNs are coded relative to LSN 0
      tree = network_layout.reference_residual(tree, int_weights["lsn"][0], lsn_steps[0], steps)
    c = rans.new_encoder()
    scales, bits = weights_coding.encode_tensors(c, leaves(tree))
    lsn_bits.append(bits)
    layers.append(bitstream.Layer(f32(float(lmbdas[r])), d, tuple(scales),
                                  rans.payload_bytes(c), fj))
  g = gmn or {}
  mf = bitstream.MoricFile(
      height=height, width=width, mode=mode, num_regions=num_regions,
      object_only=object_only, arch=arch, modulation=modulation,
      gmn_width=int(g["width"]) if has_gmn else 0,
      mod_width=int(g["mod_width"]) if has_gmn else 0,
      gmn_activation=str(g["activation"]) if has_gmn else "relu",
      arm_frac_bits=frac, delta_arm=d_arm, delta_gmn=f32(deltas.get("gmn", 1.0)),
      contours=tuple(contours), lmbda0=f32(float(lmbdas[0])),
      delta_lsn0=1.0 if object_only else lsn_deltas[0],
      base_scales=tuple(base_scales), base_payload=rans.payload_bytes(coder),
      layers=tuple(layers),
      delta_upsampling=f32(deltas["upsampling"]) if has_ups else 1.0,
      base_factors=tuple(base_factors))
  region_latents = np.bincount(np.asarray(owners), weights=per_latent,
                               minlength=num_regions)
  return bitstream.write(mf), {
      "latents": float(latent_bits), "region_latents": region_latents,
      "shared": float(shared_bits), "lsn": [float(b) for b in lsn_bits],
      "contours": [8.0 * len(c) for c in contours]}
