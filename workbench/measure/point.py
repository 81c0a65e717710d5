"""One measured point of the trade-off: a recipe applied to the baseline, measured on a few steps.

The unit the notebooks, the dashboard, the results store and sweeps work with: accuracy with its
90% Wilson interval, fidelity (KL to the baseline), latency with its spread, weight and KV bytes,
and, where the recipe sets them, the cache policy's and the batcher's figures, for one recipe.

Engines: `ort` (the default) measures the recipe's model as the export writes it, the fused ONNX
graph with the recipe's own codes in MatMulNBits (`workbench.ort`), on ONNX Runtime: accuracy,
KL and latency of the artifact a user ships. `pytorch` measures PyTorch eager (the parity
reference) and is what runs where ONNX Runtime cannot: 3- and 2-bit or bfloat16 weights, a KV-cache
section (its policies and the prefix cache are PyTorch's), other architectures; the point's `engine`
then says why (`ort_refusal`). `llama.cpp` (where llama-cpp-python is installed) measures the GGUF
file `workbench export --format gguf` writes, the recipe's codes in GGUF blocks, on llama.cpp, fed the
same token ids (`workbench.llamacpp`); what it cannot run goes to PyTorch the same way (`llamacpp_refusal`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass

import torch

from ..recipe import Recipe, apply_recipe
from .accuracy import run_task, typical_prompt
from .fidelity import kl_and_ppl, target_ids, target_logprobs, task_and_logprobs_ort
from .latency import measure_latency, measure_ort_latency
from .memory import weight_bytes
from .records import AccuracyRecord, Measured, Spread, wilson_interval

ENGINES = ("ort", "pytorch", "llama.cpp")

SERVICE_STEPS = 8  # steps whose batches are timed to fit the service-time model of a batching section
SIMULATED_REQUESTS = 1000  # requests in the replayed Poisson stream of a batching section


class Cancelled(Exception):
    """A measurement stopped on request (nothing of it is kept)."""


@dataclass(frozen=True)
class Point:
    """A measured recipe. Fractions in 0..1, times in ms, bytes as stored.

    `kv_bytes` is the most KV cache one step held (under the recipe's cache policy, if any);
    `cache` and `serving` are the cache policy's and the simulated batcher's figures when the
    recipe has those sections.
    """

    recipe: dict
    n: int
    step: float
    type: float
    parse_failure: float
    kl: float | None  # None where fidelity was not measured (`evaluate` of a model without a recipe)
    ppl: float | None
    prefill_ms: Spread
    decode_ms: Spread
    weight_bytes: int
    engine: str
    seconds: float  # wall time to apply and measure
    kv_bytes: int = 0
    cache: dict | None = None
    serving: dict | None = None
    target: dict | None = None  # latency and memory at a deployment shape (workbench.measure.target)
    exact: float | None = None
    kv_bytes_per_token: float = 0.0
    prompt_tokens: int = 0  # the prompt latency was measured at
    threads: int = 0
    vision_ms: Spread | None = None  # a vision-language model: encoding the screenshot of the typical step
    vision_weight_bytes: int = 0  # the vision tower's part of weight_bytes
    image_tokens: int = 0  # image tokens of the typical step (in prompt_tokens and in the KV cache)
    prompt_mode: str = "text"  # "text" (accessibility tree) or "open-autoglm" (screenshot, the agent's messages)
    predictions: list = dataclasses.field(default_factory=list, compare=False, repr=False)  # not stored

    @property
    def step_interval(self) -> tuple[float, float]:
        """90% Wilson interval of the step accuracy over the n steps."""
        return wilson_interval(round(self.step * self.n), self.n)

    def value(self, section: str, key: str, default=None):
        """A knob value of the recipe, e.g. point.value("prune", "ratio")."""
        return self.recipe.get(section, {}).get(key, default)

    @property
    def memory_bytes(self) -> int:
        """Weights as stored plus the peak KV cache of a step."""
        return self.weight_bytes + self.kv_bytes

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        del data["predictions"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Point":
        data = dict(data)  # rows stored before a field existed take its default
        for key in ("prefill_ms", "decode_ms", "vision_ms"):
            if data.get(key) is not None:
                data[key] = Spread(**data[key])
        return cls(**data)

    @property
    def label(self) -> str:
        """Short description, e.g. 'wanda 0.5 unstructured + rtn 4b g32'."""
        parts = []
        if "prune" in self.recipe:
            p = self.recipe["prune"]
            parts.append(f"{p['method']} {p.get('ratio', '')} {p.get('pattern', '')}".strip()
                         + (" +vision" if p.get("scope") == "all" else ""))
        if "quant" in self.recipe:
            q = self.recipe["quant"]
            g = q.get("group_size") or "ch"
            parts.append(f"{q['method']} {q['bits']}b g{g}" + (" w8a8" if q.get("activations") == "int8" else "")
                         + (" +vision" if q.get("scope") == "all" else ""))
        if "cache" in self.recipe:
            c = self.recipe["cache"]
            parts.append(f"KV {c['policy']}" + (f" {c['window']}" if c["policy"] == "sliding" else "")
                         + (" + prefix" if c.get("prefix_capacity_mb") else ""))
        if "batching" in self.recipe:
            b = self.recipe["batching"]
            parts.append(f"batch<={b['max_batch']} {b['window_ms']:g} ms")
        return " + ".join(parts) or "baseline"


class PointMeter:
    """Measures recipes against one baseline on fixed steps; the baseline's log-probs are computed once.

    Args:
        model, tokenizer: the loaded baseline (never modified).
        processor: a vision-language model's processor (`workbench.model.vision.load_processor`);
            required for a Glm4v with its vision tower, whose steps need screenshots (the
            `open-autoglm` prompt mode, measured in PyTorch: `workbench.measure.vision`).
        steps: evaluation steps (a few dozen for interactive use; in episode order for the prefix cache).
        calib: calibration token batches for methods that need them.
        latency_repeats: timed repeats after warm-up.
        progress: show tqdm bars.
    Attributes:
        fingerprint: the baseline's model fingerprint; data_hash: hash of the steps and calibration
        batches; settings: the meter's own settings (with the fingerprint and data hash, what a
        stored point is keyed by besides the recipe and the library versions).
    """

    def __init__(self, model, tokenizer, steps, calib=None, *, latency_repeats: int = 5, progress: bool = False,
                 engine: str = "ort", processor=None):
        from ..model.vision import is_vision_model
        from ..task import steps_hash
        from .provenance import model_fingerprint

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if engine == "llama.cpp":
            from ..llamacpp import llama_cpp

            llama_cpp()  # LlamaCppMissing, naming how to install it, before anything is measured
        self.model, self.tokenizer, self.steps, self.calib = model.eval(), tokenizer, list(steps), calib
        self.latency_repeats, self.progress, self.engine = latency_repeats, progress, engine
        self.source = None  # the model folder, where known (PointMeter.load): what an export reloads
        self.fingerprint = model_fingerprint(model)
        self.data_hash = _data_hash(steps_hash(self.steps), calib)
        self.settings = {"latency_repeats": latency_repeats, "service_steps": SERVICE_STEPS,
                         "simulated_requests": SIMULATED_REQUESTS, "engine": engine}
        if engine == "ort":
            self.settings["ort_kv"] = "shared-buffer"  # the fused graph's KV updated in place (a stored point says so)
        if engine == "llama.cpp":
            from ..llamacpp import version

            self.settings["llama_cpp_python"] = version()  # a stored point is keyed by the llama.cpp it ran on
        self.screens = None  # a vision-language model's steps as inputs (ScreenTask)
        if is_vision_model(model):
            from .vision import PROMPT_MODE, ScreenTask

            if processor is None:
                raise ValueError("a vision-language model needs its processor: "
                                 "PointMeter(..., processor=load_processor(folder))")
            self.screens = ScreenTask(processor, self.steps)
            self.settings["prompt_mode"] = PROMPT_MODE
        self._targets = self.screens.targets if self.screens else [target_ids(tokenizer, s) for s in self.steps]
        self._ref = None  # the baseline's target log-probs (`reference`), computed on first use
        self._typical = typical_prompt(tokenizer, self.steps)
        self._services: dict = {}  # service-time model per weights recipe and batch sizes

    @classmethod
    def load(cls, source=None, episodes=None, *, limit: int = 48, calib_steps: int | None = None,
             latency_repeats: int = 3, progress: bool = False, engine: str = "ort", dtype="float32",
             device="cpu", vision: bool = True) -> "PointMeter":
        """Load a model (None: open-autoglm-tiny) and the first `limit` steps of an episode file.

        Args:
            source: model folder (see workbench.model.load_model).
            episodes: JSONL episode file (None: data/episodes/eval.jsonl).
            limit: steps measured per point.
            calib_steps: calibration prompts (data/episodes/calib.jsonl) for Wanda, SparseGPT, GPTQ
                (default `workbench.calib.CALIB_STEPS`, what evaluate and export use).
            latency_repeats: timed repeats per latency figure.
            progress: show tqdm bars.
            engine: "ort" (ONNX Runtime, the exported graph), "pytorch", or "llama.cpp" (the GGUF file).
            dtype, device: how the model loads ("float32", "bfloat16", "float16"; "cpu", "cuda").
            vision: a Glm4v: with its vision tower on screenshots (True) or its language model alone.
        Raises:
            ModelLoadError, EpisodeError: a bad model folder or episode file (the message says which).
        """
        from ..calib import CALIB_STEPS, default_calibration
        from ..model import load_model
        from ..model.vision import is_vision_model, load_processor
        from ..task import DEFAULT_EPISODES, load_steps

        steps = load_steps(episodes if episodes is not None else DEFAULT_EPISODES, limit=limit)
        model, tokenizer = load_model(source, dtype=dtype, device=device, vision=vision)
        processor = load_processor(source) if is_vision_model(model) else None
        calib = default_calibration(tokenizer, n=calib_steps or CALIB_STEPS, processor=processor)
        meter = cls(model, tokenizer, steps, calib, latency_repeats=latency_repeats, progress=progress, engine=engine,
                    processor=processor)
        meter.source = source
        meter.reference  # noqa: B018 - the baseline's log-probs now, not on the first point
        return meter

    def __call__(self, recipe, *, on_progress=None, fidelity: bool = True) -> Point:
        """Apply `recipe` (Recipe, dict or JSON) to a copy of the baseline and measure it.

        Args:
            recipe: the Recipe (prune and quant change the weights; cache and batching are measured).
            on_progress: `fn(done, total)` called as the measurement advances; it may raise (e.g.
                `Cancelled`) to stop it, and then nothing is returned.
            fidelity: measure KL and perplexity against the baseline (False: they are None).
        Raises:
            RecipeError: a bad recipe (before anything runs).
        """
        t0 = time.perf_counter()
        recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)
        if self.screens is not None and (recipe.cache is not None or recipe.batching is not None):
            from ..recipe import RecipeError

            raise RecipeError("a vision-language model is measured without cache and batching sections (their "
                              "measurements replay text prompts); remove them from the recipe")
        weights = Recipe(prune=recipe.prune, quant=recipe.quant)
        service_key = (str(weights.to_json()), recipe.batching.timed_batch_sizes) if recipe.batching else None
        n = len(self.steps)
        plan = _service_batches(min(n, SERVICE_STEPS), service_key[1]) if service_key and \
            service_key not in self._services else 0
        total, done = 2 * n + 1 + plan, [0]

        def tick():
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0], total)

        if on_progress is not None:
            on_progress(0, total)
        model, reports = (self.model, {}) if not recipe.changes_weights else \
            apply_recipe(self.model, weights, calib=self.calib)
        refusals = {"ort": ort_refusal, "llama.cpp": llamacpp_refusal}
        refusal = refusals[self.engine](recipe, model) if self.engine in refusals else None
        if self.engine == "ort" and refusal is None:
            m = self._on_ort(model, tick, fidelity)
        elif self.engine == "llama.cpp" and refusal is None:
            m = self._on_llamacpp(model, tick, fidelity)
        else:
            m = self._on_pytorch(model, recipe, tick, fidelity)
            kernels = getattr(reports.get("quant"), "kernels", ())
            m.engine += (f" ({', '.join(kernels)})" if kernels else "") + \
                (f", cache {recipe.cache.label}" if recipe.cache is not None else "") + \
                (f"; not {'onnxruntime' if self.engine == 'ort' else self.engine}: {refusal}" if refusal else "")
        tick()
        serving = None
        if recipe.batching is not None:
            from ..serve import measure_service_times, simulate

            if service_key not in self._services:
                self._services[service_key] = measure_service_times(
                    model, self.tokenizer, self.steps[:SERVICE_STEPS], service_key[1], progress=self.progress,
                    on_step=tick)
            serving = simulate(recipe.batching, self._services[service_key], SIMULATED_REQUESTS).to_json()
            serving["engine"] = "replayed over pytorch-eager service times"
        acc, lat = m.accuracy, m.latency
        return Point(recipe.to_json(), n, acc.step, acc.type, acc.parse_failure, m.kl, m.ppl, lat.prefill_ms,
                     lat.decode_ms_per_token, m.weight_bytes, m.engine, time.perf_counter() - t0, m.kv_bytes,
                     m.cache, serving, None, acc.exact, m.kv_bytes_per_token, lat.prompt_tokens, lat.threads,
                     predictions=m.predictions, **m.vision)

    def _on_ort(self, model, tick, fidelity: bool = True) -> Measured:
        """Accuracy, KL, latency and stored bytes of the fused ONNX graph of `model` on ONNX Runtime."""
        from ..ort import fused_decoder, precision_label

        if self.screens is not None:
            from .vision import measure_screens_ort

            return measure_screens_ort(model, self.screens, self.reference if fidelity else None, self._targets,
                                       repeats=self.latency_repeats, progress=self.progress, tick=tick)
        decoder = fused_decoder(model)
        engine = f"onnxruntime-fused ({precision_label(model)})"
        acc, preds, gens, got = task_and_logprobs_ort(decoder, self.tokenizer, self.steps, progress=self.progress,
                                                      on_step=lambda: (tick(), tick()))
        peak = max(gens, key=lambda g: g.kv_bytes)
        kl, ppl = kl_and_ppl(self.reference, got, self._targets) if fidelity else (None, None)
        lat = measure_ort_latency(decoder, self._typical.numpy(), repeats=self.latency_repeats, engine=engine)
        per_token = peak.kv_bytes / (peak.prompt_tokens + len(peak.tokens))
        return Measured(acc, preds, peak.kv_bytes, per_token, kl, ppl, lat, decoder.weight_bytes, engine)

    def _on_llamacpp(self, model, tick, fidelity: bool = True) -> Measured:
        """Accuracy, KL, latency and stored bytes of the GGUF file of `model` on llama.cpp."""
        import tempfile
        from pathlib import Path

        from ..llamacpp import LlamaCppDecoder, write_gguf

        with tempfile.TemporaryDirectory(prefix="workbench-gguf-") as tmp:
            written = write_gguf(model, self.tokenizer, Path(tmp) / "model.gguf")
            decoder = LlamaCppDecoder(written.path)
            engine = f"llama.cpp ({written.label})"
            try:
                acc, preds, gens, got = task_and_logprobs_ort(decoder, self.tokenizer, self.steps,
                                                              progress=self.progress, on_step=lambda: (tick(), tick()))
                lat = measure_ort_latency(decoder, self._typical.numpy(), repeats=self.latency_repeats, engine=engine)
            finally:
                decoder.close()
        peak = max(gens, key=lambda g: g.kv_bytes)
        kl, ppl = kl_and_ppl(self.reference, got, self._targets) if fidelity else (None, None)
        per_token = peak.kv_bytes / (peak.prompt_tokens + len(peak.tokens))
        stored = sum(t.nbytes for t in written.tensors.values())
        return Measured(acc, preds, peak.kv_bytes, per_token, kl, ppl, lat, stored, engine)

    def _on_pytorch(self, model, recipe, tick, fidelity: bool = True) -> Measured:
        """Accuracy, KL and latency of `model` in PyTorch eager (under the recipe's cache policy, if any)."""
        if self.screens is not None:
            from .vision import measure_screens

            return measure_screens(model, self.screens, self.reference if fidelity else None, self._targets,
                                   repeats=self.latency_repeats, progress=self.progress, tick=tick)
        cache, factory = None, None
        if recipe.cache is not None:
            from ..cache import new_cache
            from ..task import aggregate
            from .cache import measure_cache

            rec, preds = measure_cache(model, self.tokenizer, self.steps, recipe.cache, progress=self.progress,
                                       on_step=tick)
            scores = aggregate(preds)
            acc = AccuracyRecord(scores.n, rec.step, rec.type, scores.exact, scores.parse_failure)
            kv, per_token, cache = rec.kv_bytes, rec.kv_bytes_per_token, rec.to_json()
            layers = model.config.num_hidden_layers
            factory = lambda: new_cache(recipe.cache, layers)  # noqa: E731
        else:
            acc, preds, kv, per_token = run_task(model, self.tokenizer, self.steps, progress=self.progress,
                                                 on_step=tick)
        kl = ppl = None
        if fidelity:
            kl, ppl = kl_and_ppl(self.reference, target_logprobs(model, self.tokenizer, self.steps, progress=False,
                                                                 on_step=tick), self._targets)
        else:
            for _ in self.steps:
                tick()
        lat = measure_latency(model, self._typical, repeats=self.latency_repeats, cache_factory=factory)
        return Measured(acc, preds, kv, per_token, kl, ppl, lat, weight_bytes(model), lat.engine, cache)

    @property
    def reference(self) -> list:
        """The baseline's target log-probabilities (PyTorch), computed on first use."""
        if self._ref is None:
            if self.screens is not None:
                from .vision import screen_logprobs

                self._ref = screen_logprobs(self.model, self.screens)
            else:
                self._ref = target_logprobs(self.model, self.tokenizer, self.steps, progress=self.progress)
        return self._ref


def ort_refusal(recipe, model) -> str | None:
    """Why ONNX Runtime cannot run this recipe's model (None: it can).

    Args:
        recipe: the Recipe.
        model: the model with the recipe's weights applied.
    Returns:
        A short reason, e.g. "3-bit weights have no ONNX Runtime CPU kernel", or None.
    """
    q = recipe.quant
    if q is not None and q.bits in (3, 2):
        return f"{q.bits}-bit weights have no ONNX Runtime CPU kernel"
    if q is not None and q.bits == 16:
        return "bfloat16 weights have no ONNX Runtime CPU kernel"
    if recipe.cache is not None:
        return f"KV cache {recipe.cache.label} runs in PyTorch only"
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        return f"a {str(dtype).removeprefix('torch.')} model has no ONNX Runtime CPU graph here (load it in float32)"
    if next(model.parameters()).device.type != "cpu":
        return "the ONNX graphs are measured on the CPU; a model on a GPU runs in PyTorch"
    if type(model).__name__ == "Glm4vForConditionalGeneration":
        from ..model.vision import is_vision_model

        return None if is_vision_model(model) else "a Glm4v loaded text-only runs in PyTorch"
    from ..ort.graph import FUSED_ARCHITECTURES

    if type(model).__name__ not in FUSED_ARCHITECTURES:
        return f"the fused graph is written for {' / '.join(FUSED_ARCHITECTURES)}, not {type(model).__name__}"
    return None


def llamacpp_refusal(recipe, model) -> str | None:
    """Why llama.cpp cannot run this recipe's model as the GGUF writer writes it (None: it can)."""
    q = recipe.quant
    if q is not None and q.bits == 16:
        return "bfloat16 layers are not written to GGUF by the workbench"
    if recipe.cache is not None:
        return f"KV cache {recipe.cache.label} runs in PyTorch only"
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        return f"a {str(dtype).removeprefix('torch.')} model is written to GGUF from float32 (load it in float32)"
    if next(model.parameters()).device.type != "cpu":
        return "llama.cpp is measured on the CPU; a model on a GPU runs in PyTorch"
    if type(model).__name__ != "Glm4ForCausalLM":
        return f"the GGUF writer handles Glm4ForCausalLM (llama.cpp glm4), not {type(model).__name__}"
    return None


def _service_batches(n: int, sizes) -> int:
    """Timed batches of measure_service_times over n steps (one pass: ceil(n / b) batches of each size b)."""
    return sum(-(-n // b) for b in sizes)


def _data_hash(steps_digest: str, calib) -> str:
    h = hashlib.sha256(steps_digest.encode())
    for batch in calib or ():  # token ids, or a vision-language step's tensors
        for t in (batch[k] for k in sorted(batch)) if isinstance(batch, dict) else (batch,):
            h.update(t.numpy().tobytes())
    return h.hexdigest()
