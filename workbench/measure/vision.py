"""Measuring a vision-language model (Glm4v) on screenshot steps, prompted as Open-AutoGLM prompts it.

Each step's inputs are the `open-autoglm` prompt mode's messages (`workbench.task.open_autoglm`) and
the step's screenshot, through the checkpoint's own processor (`workbench.model.vision`). The same
rules as for text models: greedy actions scored by the task rules; fidelity teacher-forced on the
target answer (``<think></think><answer>{action}</answer>`` + EOS, the form the agent keeps); latency
at the step of median prompt length, batch 1, with the vision encoder, prefill and decode timed
apart (median and p90 over repeats after warm-up).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.generate import MAX_NEW_TOKENS, decode_one_vl, encode_images, greedy_vl, model_device, prefill_vl
from ..model.vision import answer_ids, screen_inputs, vision_tower, with_tokens
from .accuracy import accuracy_record, prediction
from ..task.open_autoglm import earlier_apps
from .fidelity import kl_and_ppl
from .memory import weight_bytes
from .records import LatencyRecord, Measured, Spread

PROMPT_MODE = "open-autoglm"


class ScreenTask:
    """Steps with screenshots, as model inputs of one processor (built once, on the CPU).

    Args:
        processor: a `workbench.model.vision.ScreenProcessor`.
        steps: task Steps; each needs a screenshot.
        lang: the system prompt's language ("en", "zh").
        system: a system prompt text (None: the workbench's, see `open_autoglm.system_prompt`).
    Raises:
        ProcessorError: a step without a screenshot, or one that cannot be read (the step is named).
    """

    def __init__(self, processor, steps, *, lang: str = "en", system: str | None = None):
        self.processor, self.steps, self.lang = processor, list(steps), lang
        apps = earlier_apps(self.steps)
        self.inputs = [screen_inputs(processor, s, apps=apps[(s.episode_id, s.step)], system=system, lang=lang)
                       for s in self.steps]
        self.targets = [answer_ids(processor, s) for s in self.steps]
        lengths = sorted((x["input_ids"].shape[1], i) for i, x in enumerate(self.inputs))
        self.typical = lengths[len(lengths) // 2][1]  # the step latency is measured at

    def on(self, device, i: int) -> dict:
        """Step i's inputs on `device`."""
        return {k: v.to(device) for k, v in self.inputs[i].items()}

    @property
    def image_tokens(self) -> int:
        """Image tokens of the typical step."""
        return int(self.inputs[self.typical]["mm_token_type_ids"].sum())


@torch.no_grad()
def run_screen_task(model, task: ScreenTask, *, progress: bool = False, on_step=None,
                    max_new_tokens: int = MAX_NEW_TOKENS):
    """Greedy actions for every step, scored. Returns (AccuracyRecord, predictions, generations)."""
    device, eos = model_device(model), task.processor.eos_token_id
    preds, gens = [], []
    for i, step in enumerate(tqdm(task.steps, desc="evaluate", disable=not progress, mininterval=1)):
        gen = greedy_vl(model, task.on(device, i), eos, max_new_tokens)
        gens.append(gen)
        preds.append(prediction(step, task.processor.tokenizer.decode(gen.tokens, skip_special_tokens=False)))
        if on_step is not None:
            on_step()
    return accuracy_record(preds), preds, gens


@torch.no_grad()
def screen_logprobs(model, task: ScreenTask, *, on_step=None) -> list[torch.Tensor]:
    """Teacher-forced log-softmax (n_target, V) at each step's target answer tokens (CPU, float32)."""
    device, out = model_device(model), []
    for i, target in enumerate(task.targets):
        x = task.on(device, i)
        n = x["input_ids"].shape[1]
        logits = model(**with_tokens(x, target[:-1])).logits[0, n - 1:].float().cpu()
        out.append(torch.log_softmax(logits, -1))
        if on_step is not None:
            on_step()
    return out


@torch.no_grad()
def measure_screen_latency(model, task: ScreenTask, *, decode_tokens: int = 16, warmup: int = 2,
                           repeats: int = 5, engine: str = "pytorch-eager"):
    """Vision encoding, prefill and decode-one-token of the typical step, each timed on its own.

    Returns:
        (LatencyRecord, vision Spread in ms).
    """
    device = model_device(model)
    x = task.on(device, task.typical)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    vis, pre, dec = [], [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        encoded = encode_images(model, x)
        sync()
        t1 = time.perf_counter()
        logits, cache = prefill_vl(model, x, encoded)
        sync()
        t2 = time.perf_counter()
        steps = []
        for _ in range(decode_tokens):
            token = logits.argmax(-1, keepdim=True)
            t0d = time.perf_counter()
            logits = decode_one_vl(model, token, cache)
            sync()
            steps.append(time.perf_counter() - t0d)
        if r >= warmup:
            vis.append((t1 - t0) * 1e3)
            pre.append((t2 - t1) * 1e3)
            dec.append(statistics.median(steps) * 1e3)
    lat = LatencyRecord(Spread.of(pre), Spread.of(dec), int(x["input_ids"].shape[1]), engine, torch.get_num_threads())
    return lat, Spread.of(vis)


def vision_weight_bytes(model) -> int:
    """Bytes of the vision tower's weights as stored (0 for a text model)."""
    tower = vision_tower(model)
    return weight_bytes(tower) if tower is not None else 0


def run_screen_task_ort(vlm, task: ScreenTask, *, progress: bool = False, on_step=None,
                        max_new_tokens: int = MAX_NEW_TOKENS):
    """Greedy actions and teacher-forced target log-probs on the three ONNX graphs, one prefill per step.

    Returns:
        (AccuracyRecord, predictions, generations, per-step (n_target, V) log-softmax tensors).
    """
    eos, preds, gens, logprobs = task.processor.eos_token_id, [], [], []
    for i, step in enumerate(tqdm(task.steps, desc="evaluate", disable=not progress, mininterval=1)):
        target = task.targets[i]

        def score(last, past, n, delta, target=target):
            rows = [last[None]]
            if len(target) > 1:
                rows.append(vlm.extend(target[:-1], past, n, delta)[0][0])
            logprobs.append(torch.log_softmax(torch.from_numpy(np.concatenate(rows)).float(), -1))

        gen = vlm.greedy(task.inputs[i], eos, max_new_tokens, on_prefill=score)
        gens.append(gen)
        preds.append(prediction(step, task.processor.tokenizer.decode(gen.tokens, skip_special_tokens=False)))
        if on_step is not None:
            on_step()
    return accuracy_record(preds), preds, gens, logprobs


def measure_screen_latency_ort(vlm, task: ScreenTask, *, decode_tokens: int = 16, warmup: int = 2,
                               repeats: int = 5, engine: str = "onnxruntime"):
    """`measure_screen_latency` on the three ONNX graphs. Returns (LatencyRecord, vision Spread in ms)."""
    x = task.inputs[task.typical]
    vis, pre, dec = [], [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        features = vlm.encode(x["pixel_values"])
        t1 = time.perf_counter()
        logits, past, delta = vlm.prefill(x, features)
        t2 = time.perf_counter()
        n, steps = logits.shape[1], []
        for _ in range(decode_tokens):
            token = int(logits[0, -1].argmax())
            t0d = time.perf_counter()
            logits, past = vlm.decode_one(token, past, n, delta)
            steps.append(time.perf_counter() - t0d)
            n += 1
        if r >= warmup:
            vis.append((t1 - t0) * 1e3)
            pre.append((t2 - t1) * 1e3)
            dec.append(statistics.median(steps) * 1e3)
    threads = vlm.text.get_session_options().intra_op_num_threads
    lat = LatencyRecord(Spread.of(pre), Spread.of(dec), int(x["input_ids"].shape[1]), engine, threads)
    return lat, Spread.of(vis)


def _measured(acc, preds, gens, kl, ppl, lat, vision, weight: int, vision_bytes: int, engine: str,
              task: ScreenTask) -> Measured:
    peak = max(gens, key=lambda g: g.kv_bytes)
    per_token = peak.kv_bytes / (peak.prompt_tokens + len(peak.tokens))
    extra = dict(vision_ms=vision, vision_weight_bytes=vision_bytes, image_tokens=task.image_tokens,
                 prompt_mode=PROMPT_MODE)
    return Measured(acc, preds, peak.kv_bytes, per_token, kl, ppl, lat, weight, engine, vision=extra)


def measure_screens(model, task: ScreenTask, reference, targets, *, repeats: int = 5, progress: bool = False,
                    tick=lambda: None) -> Measured:
    """A vision-language model on screenshot steps in PyTorch: accuracy, KL to `reference` (None: not
    measured), vision / prefill / decode latency, bytes of the whole model and of its vision tower.

    Args:
        model: the recipe's Glm4v. task: the steps. reference, targets: the baseline's target log-probs and ids.
        repeats: timed latency repeats. progress: tqdm bars. tick: called twice per step (progress).
    """
    acc, preds, gens = run_screen_task(model, task, progress=progress, on_step=tick)
    kl = ppl = None
    if reference is not None:
        kl, ppl = kl_and_ppl(reference, screen_logprobs(model, task, on_step=tick), targets)
    else:
        for _ in task.steps:
            tick()
    lat, vision = measure_screen_latency(model, task, repeats=repeats)
    return _measured(acc, preds, gens, kl, ppl, lat, vision, weight_bytes(model), vision_weight_bytes(model),
                     lat.engine, task)


def measure_screens_ort(model, task: ScreenTask, reference, targets, *, repeats: int = 5, progress: bool = False,
                        tick=lambda: None) -> Measured:
    """`measure_screens` on what the export writes: the vision, embedding and text graphs of `model` (its codes
    packed) on ONNX Runtime; bytes are what the graphs store."""
    from ..ort import precision_label
    from ..ort.vision import VISION_FILE
    from ..ort.vision_graphs import vision_language

    x = task.inputs[task.typical]
    vlm, sizes = vision_language(model, x["image_grid_thw"], x["pixel_values"])
    engine = f"onnxruntime-vision-language ({precision_label(model)})"
    acc, preds, gens, got = run_screen_task_ort(vlm, task, progress=progress, on_step=lambda: (tick(), tick()))
    kl, ppl = kl_and_ppl(reference, got, targets) if reference is not None else (None, None)
    lat, vision = measure_screen_latency_ort(vlm, task, repeats=repeats, engine=engine)
    return _measured(acc, preds, gens, kl, ppl, lat, vision, sum(sizes.values()), sizes[VISION_FILE], engine, task)
