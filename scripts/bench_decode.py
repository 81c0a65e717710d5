"""Batch-1 decode (and prefill) speed of the ONNX export against memory bandwidth, at GLM-Edge-1.5B shapes.

Batch-1 decode reads every weight once per token, so its limit is weight bytes per token / memory
bandwidth. This script measures, in one run on one machine:
- the memory read bandwidth (a large numpy array summed by `--threads` threads; before and after);
- PyTorch eager float32 and ONNX Runtime (plain dynamo graph and fused contrib-op graph) in
  float32, int8 and int4 (MatMulNBits, accuracy_level 4, lm_head quantized too, as deployed);
- with `--llama-cpp` (llama-cpp-python installed: `make llama`), llama.cpp on the GGUF file
  `workbench export --format gguf` writes from the same quantized model: the same RTN codes as
  Q8_0 / Q4_0 blocks (block 128 as four Q4_0 blocks with its scale repeated), F32 for float32;
and prints a table: runtime x precision -> ms/token, tok/s, weight GB/token, GB/s, % of the
measured bandwidth, prefill ms. Weights are random (a Glm4ForCausalLM of the GLM-Edge-1.5B shapes:
hidden 2048, 28 layers, 16 heads, 4 KV heads, head dim 128, MLP 6144, vocab 59264); decode runs
after a prompt of `--past` tokens.

    python scripts/bench_decode.py                    # full depth: ~15 min, ~14 GB peak memory
    python scripts/bench_decode.py --layers 4         # a quick look (a few minutes)
    python scripts/bench_decode.py --tiny             # open-autoglm-tiny (real weights), same table
    python scripts/bench_decode.py --llama-cpp --json # llama.cpp rows too; one JSON object per row

Not part of the tests. Times on shared cores vary by +-50% run to run: compare ratios from one run. A fused
graph's rows (its `--past` row and its `--kv-sweep` rows) share one session and take their timed repeats in
turn, so their ratios (past 1024 / past 16, separate / shared KV) see the same drift.
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.export.precision import Precision, dequantized, pack_plain  # noqa: E402
from workbench.export.wrapper import cache_kwarg, export_plain  # noqa: E402
from workbench.ort import OrtDecoder  # noqa: E402
from workbench.ort.decoder import has_gqa, make_session  # noqa: E402
from workbench.ort.graph import export_fused  # noqa: E402
from workbench.measure.target import TARGETS  # noqa: E402
from workbench.model.synthetic import jitter_norms_and_biases_  # noqa: E402

EDGE_15B = TARGETS["glm-edge-1.5b"].config_kwargs()
PRECISIONS = {  # int8 / int4: the workbench's RTN codes in MatMulNBits, accuracy_level 4, lm_head quantized too
    "fp32": Precision(),
    "int8": Precision("int8", 8, 32, True, 4, True, "rtn"),
    "int4": Precision("int4", 4, 32, True, 4, True, "rtn"),
    "int4-b128": Precision("int4", 4, 128, True, 4, True, "rtn"),  # fewer scales, less per-block work
}


def quantized(model, precision: Precision):
    """A copy of `model` with every Linear (lm_head too) quantized by the workbench's RTN, as the export packs it."""
    import copy

    from workbench.quant import RTNConfig, quantize_

    q = copy.deepcopy(model)
    if q.lm_head.weight is q.get_input_embeddings().weight:
        q.lm_head.weight = torch.nn.Parameter(q.lm_head.weight.detach().clone(), requires_grad=False)
    quantize_(q, RTNConfig(bits=precision.bits, group_size=precision.block_size),
              filter_fn=lambda m, name: type(m) is torch.nn.Linear)
    return q


def write_graph(model, graph: str, path: Path, precision: Precision) -> None:
    """The export's graph of `model` at `precision` (plain: dynamo + MatMulNBits packed in; fused: written)."""
    q = quantized(model, precision) if precision.quantized else model
    if graph == "fused":
        export_fused(q, path)
    else:
        export_plain(dequantized(q), path)
        if precision.quantized:
            pack_plain(str(path), q, precision.accuracy_level)
_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.UINT8: 1, onnx.TensorProto.INT8: 1, onnx.TensorProto.INT64: 8,
          onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.INT32: 4}


@dataclass
class Row:
    """One line of the table; `bandwidth` is the read bandwidth measured right before the row (GB/s, noisy)."""

    runtime: str
    precision: str
    ms_per_token: float
    ms_p90: float
    weight_bytes: int
    prefill_ms: float
    bandwidth: float
    profile: list | None = None  # [OpTime] per decode step (--profile)

    @property
    def gbs(self) -> float:
        return self.weight_bytes / (self.ms_per_token * 1e-3) / 1e9

    def to_json(self, bandwidth: float) -> dict:
        return {"runtime": self.runtime, "precision": self.precision, "ms_per_token": self.ms_per_token,
                "ms_per_token_p90": self.ms_p90, "tokens_per_s": 1000 / self.ms_per_token,
                "weight_bytes_per_token": self.weight_bytes, "gb_per_s": self.gbs,
                "pct_bandwidth": 100 * self.gbs / bandwidth, "bandwidth_before_gb_per_s": self.bandwidth,
                "prefill_ms": self.prefill_ms,
                **({"profile": [{"op": o.op, "ms": o.ms, "share": o.share, "calls": o.calls} for o in self.profile]}
                   if self.profile else {})}

    def cells(self, bandwidth: float) -> list[str]:
        return [self.runtime, self.precision, f"{self.ms_per_token:.1f}", f"{self.ms_p90:.1f}",
                f"{1000 / self.ms_per_token:.1f}", f"{self.weight_bytes / 1e9:.3f}", f"{self.gbs:.1f}",
                f"{100 * self.gbs / bandwidth:.0f}%", f"{self.bandwidth:.1f}", f"{self.prefill_ms:.0f}"]


class Bandwidth:
    """Memory read bandwidth in GB/s: `threads` threads each summing their slice of a 1 GiB float32 array.

    Each call reports the median of `repeats` reads; it swings over time on this kind of VM (~20 to
    ~60 GB/s), so it is measured before every row and the table relates each row to the run's median.
    """

    def __init__(self, threads: int, mib: int = 1024):
        self.a = np.ones(mib * (1 << 20) // 4, dtype=np.float32)
        self.parts = np.array_split(self.a, threads)
        self.pool = ThreadPoolExecutor(threads)
        self.seen: list[float] = []

    def __call__(self, repeats: int = 5) -> float:
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(self.pool.map(np.sum, self.parts))
            rates.append(self.a.nbytes / (time.perf_counter() - t0) / 1e9)
        self.seen.append(statistics.median(rates))
        return self.seen[-1]


def random_glm4(layers: int, seed: int = 0) -> torch.nn.Module:
    """Random Glm4ForCausalLM at GLM-Edge-1.5B shapes with `layers` layers (random biases and norms)."""
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.Glm4Config(**{**EDGE_15B, "num_hidden_layers": layers}, partial_rotary_factor=0.5,
                                  attention_bias=True, max_position_embeddings=4096, tie_word_embeddings=False,
                                  pad_token_id=0, eos_token_id=1)
    with torch.device("cpu"):
        model = transformers.Glm4ForCausalLM(cfg).eval()
    return jitter_norms_and_biases_(model, norm_std=0.1, bias_std=0.02)


def weight_bytes(path: Path) -> int:
    """Bytes of the initializers a decode step reads: all of them but the embedding table (one row is read)."""
    proto = onnx.load(str(path), load_external_data=False)
    table = next(n.input[0] for n in proto.graph.node if n.op_type == "Gather" and n.input[1] == "input_ids")
    total = 0
    for t in proto.graph.initializer:
        if t.name != table:
            total += int(np.prod(t.dims, dtype=np.int64)) * _BYTES.get(t.data_type, 4)
    return total


def torch_weight_bytes(model) -> int:
    emb = model.get_input_embeddings().weight
    return sum(p.numel() * p.element_size() for p in model.parameters() if p is not emb)


def profile_ort(path: Path, past: int, tokens: int, threads: int, vocab: int, prefix: str,
                share_buffer: bool) -> list:
    """Per-operator kernel time of `tokens` decode steps after a `past`-token prompt (ONNX Runtime's profiler;
    `time_decoder`'s loop with no timed repeat: its two prefills' events dropped)."""
    from workbench.ort.profile import per_step

    dec = OrtDecoder(make_session(path, threads, profile_prefix=prefix), share_buffer=share_buffer)
    time_decoder(dec, past, tokens, 0, vocab)
    return per_step(dec.session.end_profiling(), skip_runs=2)


def time_llamacpp(path: Path, past: int, tokens: int, repeats: int, threads: int, vocab: int):
    """The same on llama.cpp (its KV cache in float16, its default), a GGUF file written by the workbench."""
    from workbench.llamacpp import LlamaCppDecoder

    dec = LlamaCppDecoder(path, threads=threads, n_ctx=past + tokens + 8)
    try:
        return time_decoder(dec, past, tokens, repeats, vocab)
    finally:
        dec.close()


def time_decoder(dec, past: int, tokens: int, repeats: int, vocab: int) -> tuple[list[float], float]:
    """Decode step times and prefill time of any decoder with prefill / decode_one (each repeat restarts from the
    prompt's cache: decode_one(token, past, n) continues after position n)."""
    return time_interleaved([(dec, past)], tokens, repeats, vocab)[0]


def time_interleaved(runs: list, tokens: int, repeats: int, vocab: int) -> list[tuple[list[float], float]]:
    """`time_decoder` for several (decoder, past) pairs at once, their repeats taken in turn (round 1 of each,
    then round 2 of each, ...), so a drift of the machine's speed falls on all of them alike and their ratios
    hold within one run. Returns [(step times in s, prefill s)], in the order of `runs`."""
    prompt = np.random.default_rng(0).integers(2, vocab, (1, max(p for _, p in runs))).astype(np.int64)
    starts = []
    for dec, past in runs:
        dec.prefill(prompt[:, :8])  # warm-up
        t0 = time.perf_counter()
        logits, past0 = dec.prefill(prompt[:, :past])
        starts.append((logits, past0, time.perf_counter() - t0))
    times: list[list[float]] = [[] for _ in runs]
    for r in range(repeats + 1):  # the first round is warm-up
        for i, ((dec, past), (logits, past0, _)) in enumerate(zip(runs, starts)):
            kv, n = past0, past
            token = logits[:, -1:].argmax(-1).astype(np.int64)
            for _ in range(tokens):
                t0 = time.perf_counter()
                out, kv = dec.decode_one(token, kv, n)
                dt = time.perf_counter() - t0
                if r:
                    times[i].append(dt)
                token, n = out[:, -1:].argmax(-1).astype(np.int64), n + 1
    return [(t, pre) for t, (_, _, pre) in zip(times, starts)]


def gguf_weight_bytes(written) -> int:
    """Bytes a decode step reads from the GGUF file: every tensor but the embedding table."""
    return sum(t.nbytes for name, t in written.tensors.items() if name != "token_embd.weight")


@torch.no_grad()
def time_torch(model, past: int, tokens: int, repeats: int, vocab: int) -> tuple[list[float], float]:
    """The same on PyTorch eager (DynamicCache, cropped back to the prompt between repeats)."""
    from transformers import DynamicCache

    kw = cache_kwarg(model)
    prompt = torch.from_numpy(np.random.default_rng(0).integers(2, vocab, (1, past)))
    model(input_ids=prompt[:, :8])  # warm-up
    cache = DynamicCache()
    t0 = time.perf_counter()
    logits = model(input_ids=prompt, use_cache=True, **{kw: cache}).logits
    prefill = time.perf_counter() - t0
    times = []
    for r in range(repeats + 1):
        _crop(cache, past)
        token = logits[:, -1:].argmax(-1)
        for _ in range(tokens):
            t0 = time.perf_counter()
            out = model(input_ids=token, use_cache=True, **{kw: cache}).logits
            dt = time.perf_counter() - t0
            if r:
                times.append(dt)
            token = out[:, -1:].argmax(-1)
    return times, prefill


def _crop(cache, length: int) -> None:
    """Cut a DynamicCache back to `length` positions (transformers >= 5.24 takes minus the count to drop)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        try:
            cache.crop(-extra)
        except ValueError:
            cache.crop(length)


def row(runtime, precision, times, wbytes, prefill, bandwidth) -> Row:
    ms = sorted(t * 1e3 for t in times)
    return Row(runtime, precision, statistics.median(ms), ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))], wbytes,
               prefill * 1e3, bandwidth)


def _tokenizer_for(vocab: int):
    """A byte-level BPE tokenizer of `vocab` ids for the GGUF file (the bench feeds token ids; only its size matters)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab_map = {c: i for i, c in enumerate(alphabet)}
    vocab_map[alphabet[0] + alphabet[1]] = len(vocab_map)  # llama.cpp refuses a BPE vocabulary without merges
    vocab_map.update({f"t{i}": i for i in range(len(vocab_map), vocab)})
    tok = Tokenizer(models.BPE(vocab=vocab_map, merges=[(alphabet[0], alphabet[1])]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=alphabet[1])


def _profile(path: Path, past: int, args, vocab: int, prefix: Path, share_buffer: bool) -> list:
    from workbench.ort.profile import table

    ops = profile_ort(path, past, args.tokens, args.threads, vocab, str(prefix), share_buffer)
    print(f"    profile, past {past}:\n" + "\n".join("    " + line for line in table(ops).splitlines()), flush=True)
    return ops


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=28, help="decoder layers (GLM-Edge-1.5B has 28)")
    ap.add_argument("--tiny", action="store_true", help="bench open-autoglm-tiny instead (real weights)")
    ap.add_argument("--past", type=int, default=256, help="prompt tokens before the timed decode steps")
    ap.add_argument("--tokens", type=int, default=8, help="decode steps per repeat")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (after one warm-up repeat)")
    ap.add_argument("--threads", type=int, default=2, help="threads for every runtime and the bandwidth read")
    ap.add_argument("--graphs", default="plain,fused", help="ONNX graphs to bench: plain, fused")
    ap.add_argument("--precisions", default="fp32,int8,int4,int4-b128",
                    help="ONNX precisions: fp32, int8, int4 (block 32), int4-b128 (block 128)")
    ap.add_argument("--no-pytorch", action="store_true", help="skip PyTorch eager")
    ap.add_argument("--workdir", default=None, help="where to write the graphs (default: a temporary folder, removed)")
    ap.add_argument("--llama-cpp", action="store_true",
                    help="also time llama.cpp on the GGUF file of each precision (needs llama-cpp-python)")
    ap.add_argument("--kv", choices=("shared", "separate"), default="shared",
                    help="the fused graph's KV cache: one buffer updated in place (what the workbench and its "
                         "genai_config run), or a new present each step (before the shared buffer)")
    ap.add_argument("--kv-sweep", default="", metavar="P1,P2",
                    help="also time each fused graph after these prompt lengths, KV shared and separate, in turn "
                         "with its main row (e.g. 16,1024: whether a decode step grows with the context)")
    ap.add_argument("--profile", action="store_true",
                    help="also record ONNX Runtime's per-operator profile of each fused row's decode steps")
    ap.add_argument("--json", action="store_true", help="print one JSON object: the rows and the bandwidth readings")
    args = ap.parse_args(argv)
    if args.llama_cpp:
        from workbench.llamacpp import llama_cpp

        llama_cpp()  # LlamaCppMissing names how to install it, before anything is built
    torch.set_num_threads(args.threads)
    graphs = [g for g in args.graphs.split(",") if g]
    precisions = [p for p in args.precisions.split(",") if p]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-decode-"))
    work.mkdir(parents=True, exist_ok=True)
    bandwidth = Bandwidth(args.threads)
    print(f"memory read bandwidth ({args.threads} threads): {bandwidth():.1f} GB/s", flush=True)
    if args.tiny:
        from workbench.model import load_model

        model, _ = load_model()
        what = "open-autoglm-tiny"
    else:
        model = random_glm4(args.layers)
        what = f"random Glm4ForCausalLM at GLM-Edge-1.5B shapes, {args.layers} layers"
    vocab = model.config.vocab_size
    rows: list[Row] = []
    try:
        if not args.no_pytorch:
            bw = bandwidth()
            times, pre = time_torch(model, args.past, args.tokens, args.repeats, vocab)
            rows.append(row("pytorch eager", "fp32", times, torch_weight_bytes(model), pre, bw))
            print(f"  pytorch eager fp32: {rows[-1].ms_per_token:.1f} ms/token", flush=True)
        for graph in sorted(graphs, key=lambda g: g != "fused"):  # fused first: it streams its weights
            for prec in precisions:
                t0 = time.perf_counter()
                path = work / f"{graph}-{prec}.onnx"
                write_graph(model, graph, path, PRECISIONS[prec])
                gc.collect()
                print(f"  {graph} {prec} graph written in {time.perf_counter() - t0:.0f} s", flush=True)
                bw = bandwidth()
                kvs = [(args.past, args.kv == "shared" and has_gqa(path), f"onnxruntime {graph}")]
                if graph == "fused":  # does the step still grow with the context? in turn with the main row
                    kvs += [(int(p), kv == "shared", f"onnxruntime {graph} (past {p}, kv {kv})")
                            for p in args.kv_sweep.split(",") if p for kv in ("shared", "separate")]
                session = make_session(path, args.threads)
                decs = [(OrtDecoder(session, share_buffer=kv), past) for past, kv, _ in kvs]
                timed = time_interleaved(decs, args.tokens, args.repeats, vocab)
                del decs, session
                for (past, kv, name), (times, pre) in zip(kvs, timed):
                    rows.append(row(name, prec, times, weight_bytes(path), pre, bw))
                    print(f"  {name} {prec}: {rows[-1].ms_per_token:.1f} ms/token", flush=True)
                    if args.profile:
                        rows[-1].profile = _profile(path, past, args, vocab, work / f"{graph}-{prec}-{past}-{kv}",
                                                    share_buffer=kv)
                for f in (path, Path(str(path) + ".data")):
                    f.unlink(missing_ok=True)
                gc.collect()
        if args.llama_cpp:
            from workbench.llamacpp import system_info, write_gguf

            print(f"  llama.cpp: {system_info()}", flush=True)
            tok = _tokenizer_for(vocab)
            for prec in precisions:
                precision = PRECISIONS[prec]
                t0 = time.perf_counter()
                q = quantized(model, precision) if precision.quantized else model
                written = write_gguf(q, tok, work / f"{prec}.gguf")
                del q
                gc.collect()
                print(f"  gguf {prec} written in {time.perf_counter() - t0:.0f} s ({written.summary()})", flush=True)
                bw = bandwidth()
                times, pre = time_llamacpp(written.path, args.past, args.tokens, args.repeats, args.threads, vocab)
                rows.append(row("llama.cpp", prec, times, gguf_weight_bytes(written), pre, bw))
                print(f"  llama.cpp {prec}: {rows[-1].ms_per_token:.1f} ms/token", flush=True)
                written.path.unlink(missing_ok=True)
        del model
        gc.collect()
        bandwidth()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        seen = bandwidth.seen
        bw = statistics.median(seen)
        print(json.dumps({"model": what, "past": args.past, "threads": args.threads, "cpu": _cpu_name(), "kv": args.kv,
                          "bandwidth_gb_per_s": {"median": bw, "readings": seen},
                          "rows": [r.to_json(bw) for r in rows]}, indent=1))
        return 0
    print()
    print(f"{what}; batch 1, past {args.past}, {args.threads} threads, median of {args.repeats} x {args.tokens} steps")
    seen = bandwidth.seen
    bw = statistics.median(seen)
    print(f"memory read bandwidth over the run ({len(seen)} measurements): median {bw:.1f} GB/s, range "
          f"{min(seen):.1f}-{max(seen):.1f}; '% of bw' is of the median, 'bw before' the one measured before the row")
    head = ["runtime", "precision", "ms/token", "p90", "tok/s", "weight GB/token", "GB/s", "% of bw", "bw before",
            f"prefill {args.past} ms"]
    table = [head] + [r.cells(bw) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    by = {(r.runtime, r.precision): r for r in rows}
    for graph in graphs:
        f32 = by.get((f"onnxruntime {graph}", "fp32"))
        for p in ("int4", "int4-b128"):
            q = by.get((f"onnxruntime {graph}", p))
            if f32 and q:
                print(f"{graph}: {p} / fp32 tokens/s = {f32.ms_per_token / q.ms_per_token:.2f}x")
    pt = by.get(("pytorch eager", "fp32"))
    if pt:
        for r in rows:
            if r.runtime.startswith("onnxruntime"):
                print(f"{r.runtime} {r.precision}: {pt.ms_per_token / r.ms_per_token:.2f}x PyTorch eager fp32 decode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
