"""Local Synthesis Network (LSN): latents -> RGB for one region.

A per-pixel MLP (1x1 convolutions written as Dense layers on the channel axis) followed
by residual KxK convolutions. In the multi-region codec the Global Modulation Network's
signals enter the hidden layers as ``modulation.py`` describes (attribute
``modulation``); with ``"none"`` (the single-region codec) they are not used.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu}


def _shift_sum(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' convolution of planar ``(C, H, W)`` with ``(K, K, C, O)`` -> ``(O, H, W)``."""
  kh, kw, cin, cout = kernel.shape
  _, h, w = x.shape
  ph, pw = kh // 2, kw // 2
  xp = jnp.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw)))
  outs = []
  for o in range(cout):
    acc = None
    for dy in range(kh):
      for dx in range(kw):
        for c in range(cin):
          term = xp[c, dy:dy + h, dx:dx + w] * kernel[dy, dx, c, o]
          acc = term if acc is None else acc + term
    outs.append(acc)
  return jnp.stack(outs)


@jax.custom_vjp
def shifted_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' zero-padded convolution of planar ``(C, H, W)`` with ``(K, K, C, O)``.

  Returns ``(O, H, W)``. Written as sums of shifted, scaled planes (odd K): for the
  few channels of a synthesis network this fuses into elementwise loops and, with the
  explicit backward pass below, is several times faster on CPU than ``lax.conv``.
  """
  return _shift_sum(x, kernel)


def _shifted_conv_fwd(x, kernel):
  return _shift_sum(x, kernel), (x, kernel)


def _shifted_conv_bwd(res, g):
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  _, h, w = x.shape
  # d/dx: correlation of g with the spatially flipped, transposed kernel.
  dx = _shift_sum(g, jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)))
  # d/dkernel[dy, dx, c, o] = sum_p xpad[c, p + (dy, dx)] * g[o, p].
  ph, pw = kh // 2, kw // 2
  xp = jnp.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw)))
  views = jnp.stack([xp[:, dy:dy + h, dx_:dx_ + w].reshape(cin, h * w)
                     for dy in range(kh) for dx_ in range(kw)])
  dk = jnp.einsum("kcp,op->kco", views, g.reshape(cout, h * w)).reshape(kh, kw, cin, cout)
  return dx, dk


shifted_conv.defvjp(_shifted_conv_fwd, _shifted_conv_bwd)


class ResidualConv(nn.Module):
  """Planar ``(C, H, W)``: ``x + conv(act(x)) + b``, zero-initialised (identity at start).

  ``row_valid`` ``(H,)`` bool: rows outside the image (halo rows of a band, see
  ``Codec``) feed zeros to the convolution, as the image's own zero padding would.
  """
  kernel_size: int = 3
  activation: str = "gelu"

  @nn.compact
  def __call__(self, x: jax.Array, row_valid: jax.Array | None = None) -> jax.Array:
    c = x.shape[0]
    kernel = self.param("kernel", nn.initializers.zeros,
                        (self.kernel_size, self.kernel_size, c, c))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    a = ACTIVATIONS[self.activation](x)
    if row_valid is not None:
      a = jnp.where(row_valid[None, :, None], a, 0.0)
    return x + shifted_conv(a, kernel) + bias[:, None, None]


class LSN(nn.Module):
  """``(H, W, L)`` upsampled latents -> ``(H, W, 3)`` RGB (unclipped, ~[0, 1])."""
  hidden: Sequence[int] = (18, 18)
  num_res_convs: int = 2
  kernel_size: int = 3
  activation: str = "gelu"
  modulation: str = "none"   # modulation.SCHEMES

  @nn.compact
  def __call__(self, latents: jax.Array, signals: Sequence[jax.Array] | None = None,
               row_valid: jax.Array | None = None, stages: bool = False) -> jax.Array:
    """``signals``: the GMN's per-layer modulation (``None`` for scheme ``none``);
    ``row_valid``: ``(H,)`` bool, rows that lie inside the image (``ResidualConv``);
    ``stages``: return ``(H, W, 3 * (1 + num_res_convs))``, the linear output and the
    output of every residual convolution (the trunk stages of ``region_net``)."""
    act = ACTIVATIONS[self.activation]
    scheme = self.modulation if signals is not None else "none"
    h = latents
    if scheme == "concat_input":
      h = jnp.concatenate([h, signals[0]], axis=-1)
    for k, width in enumerate(self.hidden):
      if scheme == "progressive_concat":
        h = jnp.concatenate([h, signals[k]], axis=-1)
      z = nn.Dense(width)(h)
      if scheme == "film":
        gamma, beta = jnp.split(signals[k], 2, axis=-1)
        z = z * (1.0 + gamma) + beta
      h = act(z)
    x = nn.Dense(3, bias_init=nn.initializers.constant(0.5))(h)
    outs = [x]
    if self.num_res_convs:
      x = jnp.transpose(x, (2, 0, 1))
      for _ in range(self.num_res_convs):
        x = ResidualConv(self.kernel_size, self.activation)(x, row_valid)
        outs.append(jnp.transpose(x, (1, 2, 0)))
    return jnp.concatenate(outs, axis=-1) if stages else outs[-1]
