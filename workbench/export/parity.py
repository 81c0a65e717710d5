"""The parity gate: ONNX Runtime against PyTorch on eval prompts, prefill and decode steps through
the KV cache, plus greedy actions and task accuracy, checked against stated tolerances.

What is compared (per `Tolerance`, by precision):
- logits of every prompt position at prefill and of `decode_steps` tokens decoded through the KV
  cache (both runtimes fed the reference's greedy tokens, so the same positions are compared):
  max abs difference and mean KL(p_pytorch || p_onnxruntime) in nats;
- greedy actions on the accuracy steps (each runtime decoding freely): for float32 the generated
  tokens must be identical on every step; for quantized exports the task accuracy on ONNX Runtime
  must be within `accuracy_drop` of the PyTorch reference with the same quantization.
The PyTorch reference is `precision.dequantized` of the model the graph was written from (the float model for float32).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from ..measure.accuracy import run_task
from ..measure.records import AccuracyRecord, Prediction
from ..measure.accuracy import run_task_ort
from ..ort import OrtDecoder, encode
from .wrapper import cache_kwarg


# Greedy tokens that part where the reference's top two logits are closer than this have met a near-tie, which
# int8 activations (MatMulNBits' or llama.cpp's) or float rounding may break either way. Measured: the random tiny
# Glm4v's int4 RTN flipped two of four screenshot steps at margins of 0.020 and 0.024; open-autoglm-tiny's GPTQ int4
# GGUF on an AMD EPYC flipped one of eight steps at a margin of 0.0023 (a coordinate digit). Where a tolerance
# allows quantized differences (greedy_min < 1), such a step counts as identical up to the tie; a part at a wider
# margin is a failure. Task accuracy is still compared as measured.
TIE_MARGIN = 0.05


@dataclass(frozen=True)
class Tolerance:
    """Bounds the gate checks; None means the figure is reported, not gated.

    max_abs: logits, max abs difference; mean_kl: mean KL(pytorch || onnxruntime) in nats per
    position, prefill and decode each; greedy_identical: every greedy action token-identical;
    accuracy_drop: ONNX Runtime step accuracy may fall at most this far below the PyTorch reference;
    greedy_min: the share of gate steps whose greedy actions must be token-identical.
    """

    max_abs: float | None
    mean_kl: float
    greedy_identical: bool
    accuracy_drop: float | None
    greedy_min: float = 0.0


# The PyTorch reference holds the same codes as the graph (no re-quantization), so what differs is
# MatMulNBits' int8 activations (accuracy_level 4) and float rounding. Measured on open-autoglm-tiny,
# 48 steps (mean KL, prefill / decode): int4 g32 RTN 1.0e-4 / 4e-7, GPTQ 1.2e-4 / 2e-7, int4 per-channel
# asymmetric 2.3e-4, int8 g32 1.1e-4, greedy actions identical on every step; float32 ~1e-10.
TOLERANCES = {
    "float32": Tolerance(max_abs=1e-3, mean_kl=1e-6, greedy_identical=True, accuracy_drop=None, greedy_min=1.0),
    "int8": Tolerance(max_abs=None, mean_kl=1e-3, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
    "int8-dynamic": Tolerance(max_abs=None, mean_kl=2e-2, greedy_identical=False, accuracy_drop=0.1),
    "int4": Tolerance(max_abs=None, mean_kl=1e-3, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
}


@dataclass(frozen=True)
class PhaseParity:
    """Logit agreement in one phase: positions compared, max abs difference, mean KL, top-1 agreement."""

    phase: str
    positions: int
    max_abs: float
    mean_kl: float
    top1_agreement: float


@dataclass(frozen=True)
class ParityReport:
    """Everything the gate measured and its verdict (`passed`, `failures` naming each broken bound)."""

    precision: str
    tolerance: Tolerance
    prefill: PhaseParity
    decode: PhaseParity
    greedy_identical: float  # fraction of accuracy steps whose generated tokens are identical
    accuracy_onnxruntime: AccuracyRecord
    accuracy_pytorch: AccuracyRecord
    prompts: int
    decode_steps: int
    failures: tuple[str, ...] = ()
    predictions: list[Prediction] = field(default_factory=list, compare=False, repr=False)
    engine: str = "onnxruntime"  # what ran the exported file ("onnxruntime" or "llama.cpp")
    greedy_identical_to_tie: float | None = None  # ... or identical up to where the reference met a near-tie

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        """JSON object for the manifest (predictions left out)."""
        d = asdict(self)
        d.pop("predictions")
        d["failures"] = list(self.failures)
        d["passed"] = self.passed
        return d

    def summary(self) -> str:
        """A few lines for a terminal or a failed export's message."""
        acc_o, acc_p = self.accuracy_onnxruntime, self.accuracy_pytorch
        lines = [
            f"parity gate ({self.precision}): {'PASSED' if self.passed else 'FAILED'}",
            f"  prefill  {self.prefill.positions} positions: max |dlogit| {self.prefill.max_abs:.3g}, "
            f"mean KL {self.prefill.mean_kl:.3g}, top-1 {self.prefill.top1_agreement:.3f}",
            f"  decode   {self.decode.positions} positions: max |dlogit| {self.decode.max_abs:.3g}, "
            f"mean KL {self.decode.mean_kl:.3g}, top-1 {self.decode.top1_agreement:.3f}",
            f"  greedy actions identical on {self.greedy_identical:.3f} of {acc_o.n} steps"
            + (f" ({self.greedy_identical_to_tie:.3f} up to a near-tie)" if self.greedy_identical_to_tie is not None
               and self.greedy_identical_to_tie != self.greedy_identical else "") + "; step accuracy "
            f"{self.engine} {acc_o.step:.3f}, pytorch {acc_p.step:.3f}",
        ]
        lines += [f"  FAIL: {f}" for f in self.failures]
        return "\n".join(lines)


def _kl_rows(ref: torch.Tensor, got: torch.Tensor) -> torch.Tensor:
    """KL(softmax(ref) || softmax(got)) per row, float64. ref, got: (N, V)."""
    lp = torch.log_softmax(ref.double(), -1)
    lq = torch.log_softmax(got.double(), -1)
    return (lp.exp() * (lp - lq)).sum(-1).clamp(min=0)  # (N,)


class _Phase:
    """Accumulates logit comparisons of one phase."""

    def __init__(self, name: str):
        self.name, self.n, self.max_abs, self.kl, self.top1 = name, 0, 0.0, 0.0, 0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        ref_t = torch.from_numpy(np.ascontiguousarray(ref, np.float32)).reshape(-1, ref.shape[-1])
        got_t = torch.from_numpy(np.ascontiguousarray(got, np.float32)).reshape(-1, got.shape[-1])
        for a, b in zip(ref_t.split(256), got_t.split(256)):  # bounded memory at large vocabularies
            self.max_abs = max(self.max_abs, float((a - b).abs().max()))
            self.kl += float(_kl_rows(a, b).sum())
            self.top1 += int((a.argmax(-1) == b.argmax(-1)).sum())
            self.n += a.shape[0]

    def record(self) -> PhaseParity:
        n = max(self.n, 1)
        return PhaseParity(self.name, self.n, self.max_abs, self.kl / n, self.top1 / n)


@torch.no_grad()
def compare_logits(reference, decoder: OrtDecoder, prompts: list[np.ndarray], decode_steps: int,
                   *, progress: bool = True) -> tuple[PhaseParity, PhaseParity]:
    """Prefill logits of every prompt position and `decode_steps` decode steps through the KV cache.

    Args:
        reference: the PyTorch causal LM.
        decoder: the OrtDecoder.
        prompts: (1, T) int64 prompt ids each.
        decode_steps: tokens decoded after prefill (the reference's greedy tokens fed to both).
        progress: show a tqdm bar.
    Returns:
        (prefill PhaseParity, decode PhaseParity).
    """
    pre, dec = _Phase("prefill"), _Phase("decode")
    kw = cache_kwarg(reference)
    for ids in tqdm(prompts, desc="parity (logits)", disable=not progress, mininterval=1):
        cache = DynamicCache()
        out = reference(input_ids=torch.from_numpy(ids), use_cache=True, **{kw: cache})
        ref_logits = out.logits.float().numpy()  # (1, T, V)
        got, past = decoder.prefill(ids)
        pre.add(ref_logits, got)
        n = ids.shape[1]
        token = ref_logits[:, -1:].argmax(-1).astype(np.int64)  # (1, 1)
        for _ in range(decode_steps):
            out = reference(input_ids=torch.from_numpy(token), use_cache=True, **{kw: cache})
            ref_logits = out.logits.float().numpy()  # (1, 1, V)
            got, past = decoder.decode_one(token, past, n)
            dec.add(ref_logits, got)
            n += 1
            token = ref_logits[:, -1:].argmax(-1).astype(np.int64)
    return pre.record(), dec.record()


@torch.no_grad()
def reference_task(reference, tokenizer, steps, *, progress: bool = True):
    """Greedy actions of the PyTorch reference (as `run_task`), with the generated tokens.

    Returns:
        (AccuracyRecord, list of token lists).
    """
    gens = []
    rec, _, _, _ = run_task(reference, tokenizer, steps, progress=progress, generations=gens)
    return rec, [g.tokens for g in gens]


def parity_gate(reference, decoder: OrtDecoder, tokenizer, steps, precision: str, *, prompts: int = 4,
                decode_steps: int = 8, tolerance: Tolerance | None = None,
                progress: bool = True, engine: str = "onnxruntime") -> ParityReport:
    """Run the gate (see module doc).

    Args:
        reference: PyTorch model with the same quantization as the export (float model for float32).
        decoder: the OrtDecoder of the exported folder (or a LlamaCppDecoder of a GGUF file: same interface).
        tokenizer: the model's tokenizer.
        steps: task Steps; the first `prompts` are used for the logit comparison, all for accuracy.
        precision: the Precision kind ("float32", "int8", "int8-dynamic", "int4").
        prompts: prompts for the logit comparison.
        decode_steps: decode steps per prompt for the logit comparison.
        tolerance: bounds (default TOLERANCES[precision]).
        progress: show progress bars.
        engine: what runs `decoder`, named in the report.
    Returns:
        ParityReport (check `.passed`).
    """
    tol = tolerance or TOLERANCES[precision]
    steps = list(steps)
    if not steps:
        raise ValueError("the parity gate needs at least one eval step")
    reference.eval()
    ids = [encode(tokenizer, s) for s in steps[:prompts]]
    prefill, decode = compare_logits(reference, decoder, ids, decode_steps, progress=progress)
    acc_ort, preds, tok_ort = run_task_ort(decoder, tokenizer, steps, progress=progress)
    acc_ref, tok_ref = reference_task(reference, tokenizer, steps, progress=progress)
    same = sum(a == b for a, b in zip(tok_ort, tok_ref)) / len(steps)
    ties = 0 if tol.greedy_identical else sum(
        a != b and tie_margin(reference, encode(tokenizer, s), a, b) < TIE_MARGIN
        for s, a, b in zip(steps, tok_ort, tok_ref))
    to_tie = same + ties / len(steps)
    failures = []
    for ph in (prefill, decode):
        if tol.max_abs is not None and not ph.max_abs <= tol.max_abs:
            failures.append(f"{ph.phase} max |dlogit| {ph.max_abs:.3g} > {tol.max_abs:g}")
        if not ph.mean_kl <= tol.mean_kl:
            failures.append(f"{ph.phase} mean KL {ph.mean_kl:.3g} > {tol.mean_kl:g}")
    if (tol.greedy_identical or tol.greedy_min) and to_tie < max(tol.greedy_min, 1.0 if tol.greedy_identical else 0.0):
        failures.append(f"greedy actions differ on {round((1 - to_tie) * len(steps))} of {len(steps)} steps "
                        f"{'' if tol.greedy_identical else 'beyond a near-tie '}"
                        f"(at most {1 - max(tol.greedy_min, float(tol.greedy_identical)):.0%} may)")
    if tol.accuracy_drop is not None and acc_ort.step < acc_ref.step - tol.accuracy_drop - 1e-9:
        failures.append(f"step accuracy on {engine} {acc_ort.step:.3f} is more than {tol.accuracy_drop:g} "
                        f"below pytorch's {acc_ref.step:.3f}")
    return ParityReport(precision, tol, prefill, decode, same, acc_ort, acc_ref, len(ids), decode_steps,
                        tuple(failures), preds, engine, to_tie)


def parting(a: list[int], b: list[int]) -> int:
    """The index of the first token where two generations differ (the shorter's length if one extends the other)."""
    return next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), min(len(a), len(b)))


@torch.no_grad()
def tie_margin(reference, prompt, ours: list[int], theirs: list[int]) -> float:
    """The reference's top-2 logit margin where two greedy generations part (`theirs`: the reference's tokens,
    teacher-forced after the (1, T) `prompt` up to the first token that differs)."""
    i = parting(ours, theirs)
    ids = torch.cat([torch.as_tensor(np.asarray(prompt), dtype=torch.long).reshape(1, -1),
                     torch.tensor([list(theirs[:i])], dtype=torch.long).reshape(1, -1)], 1)
    top = reference(input_ids=ids).logits[0, -1].float().topk(2).values
    return float(top[0] - top[1])


def report_from_json(data: dict) -> ParityReport:
    """Rebuild a ParityReport from its manifest JSON (predictions are not stored).

    Args:
        data: `ParityReport.to_json()` output.
    Returns:
        ParityReport.
    """
    return ParityReport(
        data["precision"], Tolerance(**data["tolerance"]), PhaseParity(**data["prefill"]),
        PhaseParity(**data["decode"]), data["greedy_identical"], AccuracyRecord(**data["accuracy_onnxruntime"]),
        AccuracyRecord(**data["accuracy_pytorch"]), data["prompts"], data["decode_steps"], tuple(data["failures"]),
        engine=data.get("engine", "onnxruntime"), greedy_identical_to_tie=data.get("greedy_identical_to_tie"))


__all__ = ["TIE_MARGIN", "TOLERANCES", "ParityReport", "PhaseParity", "Tolerance", "compare_logits", "parity_gate",
           "reference_task", "report_from_json"]
