"""Linear layers whose weights are stored packed (2/3/4/8-bit codes) or in bfloat16, so memory is real.

Storage of a `PackedLinear` (all persistent buffers, so `weight_bytes` counts the packed size):
    qweight  uint8 (ceil(out * in * bits / 8),)   the (out, in) codes, flattened row-major and
             packed densely: 8 bits one code per byte, 4 bits two per byte, 2 bits four per byte
             (low bits first), 3 bits eight codes in three bytes (a little-endian 24-bit word).
             No per-row padding: the byte count is exactly ceil(out * in * bits / 8).
    scale    float16 (out, n_groups)   float16 halves the scale overhead (0.5 bit per weight at
             group 32); its rounding (relative 2^-11) costs < 0.1 dB of weight SQNR at 8 bits and
             nothing measurable below. A layer whose scales would overflow or underflow float16
             keeps them in float32.
    zero     uint8 (out, n_groups), or (1, 1) when every group shares one zero point (symmetric).
    bias     float32 (out,) or None, unchanged.
Forward dequantizes on the fly (unpack -> (q - zero) * scale -> F.linear) and caches nothing:
`kernel = "dequant-fp32"`. On CPU this is slower than the float layer (the unpack costs more than
the bytes it saves); the fast low-bit CPU path is ONNX Runtime's MatMulNBits at export.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PACK_BITS = (8, 4, 3, 2)
_UNIT = {8: (1, 1), 4: (2, 1), 2: (4, 1), 3: (8, 3)}  # bits -> (codes per unit, bytes per unit)
_FP16_MAX, _FP16_TINY = 65504.0, 6.2e-5  # float16 max and smallest normal


def packed_nbytes(numel: int, bits: int) -> int:
    """Bytes that `pack` uses for `numel` codes of `bits` bits: ceil(numel * bits / 8)."""
    return (numel * bits + 7) // 8


def _check_bits(bits: int) -> None:
    if bits not in PACK_BITS:
        raise ValueError(f"bits must be one of {', '.join(map(str, PACK_BITS))}, got {bits!r}")


def pack(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes densely into bytes.

    Args:
        q: uint8 codes of any shape (typically (out, in)), each in [0, 2^bits - 1].
        bits: 8, 4, 3 or 2.
    Returns:
        uint8 (ceil(q.numel() * bits / 8),) packed bytes (row-major order of q, low bits first).
    """
    _check_bits(bits)
    if q.dtype != torch.uint8:
        raise ValueError(f"codes must be uint8, got {q.dtype}")
    if q.numel() and int(q.max()) >= 2 ** bits:
        raise ValueError(f"codes must be < 2^{bits} = {2 ** bits}, got max {int(q.max())}")
    flat = q.reshape(-1)
    if bits == 8:
        return flat.clone()
    n, nbytes = _UNIT[bits]
    pad = (-flat.numel()) % n
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    units = flat.view(-1, n)  # (U, n)
    if nbytes == 1:  # 2 and 4 bits: n codes in one byte
        out = units[:, 0].clone()
        for i in range(1, n):
            out |= units[:, i] << (bits * i)
    else:  # 3 bits: 8 codes -> one 24-bit word -> 3 bytes
        u = units.to(torch.int32)
        word = u[:, 0].clone()
        for i in range(1, n):
            word |= u[:, i] << (bits * i)
        out = torch.stack([(word >> (8 * j)) & 0xFF for j in range(nbytes)], 1).to(torch.uint8)
    return out.reshape(-1)[: packed_nbytes(q.numel(), bits)].contiguous()


def unpack(packed: torch.Tensor, bits: int, shape) -> torch.Tensor:
    """Inverse of `pack`.

    Args:
        packed: uint8 (ceil(prod(shape) * bits / 8),) bytes from `pack`.
        bits: 8, 4, 3 or 2.
        shape: shape of the codes, e.g. (out, in).
    Returns:
        uint8 codes of `shape`.
    """
    _check_bits(bits)
    shape = tuple(shape)
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.numel() != packed_nbytes(numel, bits):
        raise ValueError(f"expected {packed_nbytes(numel, bits)} uint8 bytes for {numel} {bits}-bit "
                         f"codes, got {packed.numel()} {packed.dtype}")
    if bits == 8:
        return packed.reshape(shape)
    n, nbytes = _UNIT[bits]
    units = -(-numel // n)
    pad = units * nbytes - packed.numel()
    if pad:
        packed = torch.cat([packed, packed.new_zeros(pad)])
    mask = 2 ** bits - 1
    if nbytes == 1:
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8)  # (n,)
        codes = (packed[:, None] >> shifts) & mask  # (U, n)
    else:
        b = packed.view(units, nbytes).to(torch.int32)
        word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)  # (U,)
        shifts = torch.arange(0, 24, bits, dtype=torch.int32)  # (8,)
        codes = ((word[:, None] >> shifts) & mask).to(torch.uint8)  # (U, 8)
    codes = codes.reshape(-1)
    if codes.numel() != numel:
        codes = codes[:numel]
    return codes.reshape(shape)


def stored_scale(scale: torch.Tensor) -> torch.Tensor:
    """Scales as stored: float16 when every scale survives the cast, else float32."""
    s = scale.detach().float()
    nonzero = s[s > 1e-10]
    if nonzero.numel() and (nonzero.max() > _FP16_MAX or nonzero.min() < _FP16_TINY):
        return s.contiguous()
    return s.to(torch.float16)


class PackedLinear(nn.Module):
    """y = x W^T + b with W = (q - zero) * scale stored as packed low-bit codes (see module doc)."""

    kernel = "dequant-fp32"

    def __init__(self, in_features: int, out_features: int, bits: int, group_size: int = 0,
                 bias: bool = True, shared_zero: bool = False, scale_dtype=torch.float16):
        """Empty packed layer of the given shape (fill with `from_codes` or `load_state_dict`).

        Args:
            in_features, out_features: layer shape.
            bits: 8, 4, 3 or 2.
            group_size: input columns per scale group (0: one group per output row).
            bias: whether the layer has a bias.
            shared_zero: one zero point for the whole layer (symmetric grids) instead of one per group.
            scale_dtype: float16 (default) or float32.
        """
        super().__init__()
        _check_bits(bits)
        g = group_size or in_features
        if in_features % g:
            raise ValueError(f"group_size {group_size} does not divide in_features {in_features}")
        self.in_features, self.out_features = in_features, out_features
        self.bits, self.group_size = bits, group_size
        n_groups = in_features // g
        self.register_buffer("qweight", torch.zeros(packed_nbytes(in_features * out_features, bits),
                                                    dtype=torch.uint8))
        self.register_buffer("scale", torch.ones(out_features, n_groups, dtype=scale_dtype))
        zshape = (1, 1) if shared_zero else (out_features, n_groups)
        self.register_buffer("zero", torch.zeros(zshape, dtype=torch.uint8))
        self.bias = nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None

    @classmethod
    def from_codes(cls, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int,
                   group_size: int = 0, bias: torch.Tensor | None = None) -> "PackedLinear":
        """A packed layer from integer codes and their grid (as `grid.fit/quantize` or GPTQ give).

        Args:
            q: (out, in) integer codes in [0, 2^bits - 1].
            scale: (out, n_groups) positive float scales.
            zero: (out, n_groups) integer-valued zero points in [0, 2^bits - 1].
            bits: 8, 4, 3 or 2.
            group_size: input columns per group (0: per output channel).
            bias: (out,) float bias or None.
        Returns:
            PackedLinear computing x @ ((q - zero) * scale)^T + bias.
        """
        _check_bits(bits)
        if q.dim() != 2:
            raise ValueError(f"codes must be 2-D (out, in), got shape {tuple(q.shape)}")
        out_f, in_f = q.shape
        g = group_size or in_f
        if in_f % g:
            raise ValueError(f"group_size {group_size} does not divide in_features {in_f}")
        if tuple(scale.shape) != (out_f, in_f // g) or tuple(zero.shape) != tuple(scale.shape):
            raise ValueError(f"scale and zero must have shape {(out_f, in_f // g)}, got "
                             f"{tuple(scale.shape)} and {tuple(zero.shape)}")
        if q.numel() and (int(q.min()) < 0 or int(q.max()) >= 2 ** bits):
            raise ValueError(f"codes must lie in [0, {2 ** bits - 1}] for {bits} bits")
        z = zero.detach().float()
        if not torch.equal(z, z.round()) or (z.numel() and (z.min() < 0 or z.max() >= 2 ** bits)):
            raise ValueError(f"zero points must be integers in [0, {2 ** bits - 1}]")
        shared = bool(z.numel()) and bool((z == z.flatten()[0]).all())
        s = stored_scale(scale)
        layer = cls(in_f, out_f, bits, group_size, bias is not None, shared, s.dtype)
        layer.qweight = pack(q.to(torch.uint8), bits)
        layer.scale = s
        layer.zero = (z[:1, :1] if shared else z).to(torch.uint8).contiguous()
        if bias is not None:
            layer.bias = nn.Parameter(bias.detach().float(), requires_grad=False)
        return layer

    def codes(self) -> torch.Tensor:
        """The (out, in) uint8 codes."""
        return unpack(self.qweight, self.bits, (self.out_features, self.in_features))

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The (out, in) weight this layer computes with."""
        g = self.group_size or self.in_features
        q = self.codes().view(self.out_features, self.in_features // g, g).to(torch.float32)
        scale = self.scale.float()[..., None]  # (out, n_groups, 1)
        w = torch.addcmul(-self.zero.float()[..., None] * scale, q, scale)  # q*s - z*s: (out, n_groups, g)
        return w.reshape(self.out_features, self.in_features).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (..., in) -> (..., out); the float weight lives only for this call
        return F.linear(x, self.dequantize(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"group_size={self.group_size}, scale={self.scale.dtype}, kernel={self.kernel}")


class BF16Linear(nn.Module):
    """A Linear whose weight is stored in bfloat16 (bias stays float32); see `kernel`.

    Forward casts the input to bfloat16, multiplies in bfloat16 (oneDNN's bf16 GEMM on CPUs with
    AVX512-BF16/AMX, a slower emulation elsewhere), adds the float32 bias and returns the input dtype.
    """

    kernel = "bf16"

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
        self.bias = (None if linear.bias is None
                     else nn.Parameter(linear.bias.detach().float(), requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (..., in) -> (..., out)
        y = F.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


def pack_linear_(model: nn.Module, name: str, q: torch.Tensor, scale: torch.Tensor,
                 zero: torch.Tensor, bits: int, group_size: int = 0) -> PackedLinear:
    """Replace the Linear `name` of `model` in place by a PackedLinear of the given codes (keeps its bias).

    Args:
        model: the model (mutated).
        name: dotted module name, e.g. "model.layers.0.mlp.down_proj".
        q, scale, zero, bits, group_size: as for `PackedLinear.from_codes`.
    Returns:
        The new PackedLinear.
    """
    old = model.get_submodule(name)
    if (old.out_features, old.in_features) != tuple(q.shape):
        raise ValueError(f"{name}: codes have shape {tuple(q.shape)}, the layer is "
                         f"({old.out_features}, {old.in_features})")
    new = PackedLinear.from_codes(q, scale, zero, bits, group_size, old.bias)
    model.set_submodule(name, new)
    return new
