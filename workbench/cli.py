"""Command line: `workbench evaluate` prints the measured report of a model on an episode file;
`workbench export` writes a verified ONNX folder (or GGUF file, `--format gguf`) for a recipe; `workbench verify`
re-checks one;
`workbench sweep` measures a grid or an optuna study into the results store and prints the Pareto points;
`workbench worker` joins an optuna study in a shared store (on any number of machines) and measures its trials.

Exit codes: 0 done; 1 the parity gate failed (export: nothing written; the report goes to stdout);
2 bad input (one line on stderr naming the problem and the fix).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys

from .llamacpp.decoder import LlamaCppMissing
from .model import ModelLoadError
from .store import StoreError
from .task import EpisodeError


def _evaluate(args) -> int:
    from .measure import evaluate

    store = None
    if args.target not in (None, "tiny"):
        from .store import ResultsStore

        store = ResultsStore(args.store)
    report = evaluate(args.model, args.episodes, limit=args.limit, recipe=args.recipe, progress=not args.json,
                      engine=args.engine, target=args.target, store=store, context_tokens=args.context,
                      dtype=args.dtype, device=args.device, vision=not args.text_only)
    data = report.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    acc, lat, mem = data["accuracy"], data["latency"], data["memory"]
    print(f"model      {data['provenance']['model']} ({data['provenance']['model_fingerprint']})")
    print(f"episodes   {data['provenance']['episodes']} ({acc['n']} steps)")
    low, high = acc["step_interval"]
    print(f"accuracy   step {acc['step']:.3f} [{low:.3f}, {high:.3f} 90% Wilson]  type {acc['type']:.3f}  exact {acc['exact']:.3f}  "
          f"parse failures {acc['parse_failure']:.3f}"
          + (f"  KL {acc['kl']:.4f}  ppl {acc['ppl']:.3f}" if "kl" in acc else ""))
    if data["provenance"].get("recipe"):
        print(f"recipe     {json.dumps(data['provenance']['recipe'])}")
    print(f"latency    prefill {lat['prefill_ms']:.1f} ms ({lat['prompt_tokens']} tokens, "
          f"p90 {lat['prefill_ms_p90']:.1f})  decode {lat['decode_ms_per_token']:.2f} ms/token "
          f"(p90 {lat['decode_ms_per_token_p90']:.2f}, {lat['tokens_per_s']:.0f} tok/s)  [{lat['engine']}]")
    print(f"memory     weights {mem['weight_bytes'] / 2**20:.1f} MiB  KV peak {mem['kv_bytes'] / 2**20:.2f} MiB "
          f"({mem['kv_bytes_per_token']:.0f} B/token)  peak RSS {mem['peak_rss_bytes'] / 2**20:.0f} MiB")
    if "vision_ms" in lat:
        print(f"vision     encoder {lat['vision_ms']:.1f} ms (p90 {lat['vision_ms_p90']:.1f}), {mem['image_tokens']} image "
              f"tokens, tower {mem['vision_weight_bytes'] / 2**20:.2f} MiB  [prompt mode "
              f"{data['provenance']['prompt_mode']}]")
    if "target" in data:
        t = data["target"]
        print(f"target     {t['name']}: decode {t['decode_ms_per_token']:.1f} ms/token (p90 "
              f"{t['decode_ms_per_token_p90']:.1f}), prefill {t['prefill_ms']:.0f} ms ({t['prefill_tokens']} tokens), "
              f"{t['method']}  [{t['engine']}]")
        print(f"           weights {t['weight_bytes'] / 2**30:.2f} GiB + KV {t['kv_bytes_per_token'] / 1024:.0f} KiB/token "
              f"= {t['memory_bytes_at_context'] / 2**30:.2f} GiB at {t['context_tokens']} tokens "
              f"({t['memory_method']})")
    return 0


def _print_gate(report, latency_lines=()) -> None:
    print(report.summary())
    for line in latency_lines:
        print(line)


def _latency_line(name: str, rec) -> str:
    return (f"  {name:<12} decode {rec.decode_ms_per_token.median:.2f} ms/token (p90 {rec.decode_ms_per_token.p90:.2f}, "
            f"{rec.tokens_per_s:.0f} tok/s), prefill {rec.prefill_ms.median:.1f} ms ({rec.prompt_tokens} tokens)  "
            f"[{rec.engine}]")


def _gate_failed(e, args) -> int:
    """A failed export gate: the report to stdout (JSON with --json), the reason to stderr, exit 1."""
    if args.json:
        print(json.dumps(e.report.to_json(), indent=2))
    else:
        _print_gate(e.report)
    print(f"workbench: error: {e}", file=sys.stderr)
    return 1


def _export(args) -> int:
    from .export import ExportGateError, export_onnx

    if args.format != "onnx":
        return _export_gguf(args)
    try:
        result = export_onnx(args.out, args.recipe, source=args.model, graph=args.graph, overwrite=args.overwrite,
                             episodes=args.episodes, accuracy_steps=args.limit, quantize_lm_head=args.quantize_lm_head,
                             progress=not args.json)
    except ExportGateError as e:
        return _gate_failed(e, args)
    if args.json:
        print(json.dumps(result.manifest, indent=2))
        return 0
    if not hasattr(result, "graph"):  # a vision-language model: three graphs
        print(f"exported   {result.path} (vision, embedding and text graphs, {result.manifest['precision']['kind']})")
        print(result.parity.summary())
        return 0
    print(f"exported   {result.path} ({result.graph} graph, {result.precision.kind})")
    _print_gate(result.parity, [_latency_line("onnxruntime", result.latency_onnxruntime),
                                _latency_line("pytorch", result.latency_pytorch),
                                f"  decode speed-up of ONNX Runtime over PyTorch eager: {result.decode_speedup:.2f}x"])
    return 0


def _export_gguf(args) -> int:
    """`--format gguf` (DIR is the GGUF folder) or `--format onnx,gguf` (DIR/onnx and DIR/gguf)."""
    from pathlib import Path

    from .export import ExportGateError
    from .export.gguf import export_gguf

    if args.format == "onnx,gguf":
        out = Path(args.out)
        if not out.is_dir():
            out.mkdir(parents=True)
        onnx_args = argparse.Namespace(**{**vars(args), "format": "onnx", "out": str(out / "onnx")})
        code = _export(onnx_args)
        if code:
            return code
        args = argparse.Namespace(**{**vars(args), "out": str(out / "gguf")})
    try:
        result = export_gguf(args.out, args.recipe, source=args.model, overwrite=args.overwrite, episodes=args.episodes,
                             accuracy_steps=args.limit, quantize_lm_head=args.quantize_lm_head,
                             float_type=args.float_type, progress=not args.json)
    except ExportGateError as e:
        return _gate_failed(e, args)
    if args.json:
        print(json.dumps(result.manifest, indent=2))
        return 0
    g = result.written
    kinds = ", ".join(f"{n} {k}" for k, n in g["types"].items())
    print(f"exported   {result.path / 'model.gguf'} ({result.precision.kind}: {kinds}; "
          + ("the recipe's weights exactly)" if g["exact"] else f"max |dw| {g['max_abs_weight_difference']:.3g})"))
    _print_gate(result.parity, [_latency_line("llama.cpp", result.latency_llamacpp),
                                _latency_line("pytorch", result.latency_pytorch),
                                f"  decode speed-up of llama.cpp over PyTorch eager: {result.decode_speedup:.2f}x"])
    return 0


def _verify(args) -> int:
    from .export import verify

    result = verify(args.dir, source=args.model, episodes=args.episodes, progress=not args.json)
    if not hasattr(result, "latency_onnxruntime"):  # a vision-language folder
        print(json.dumps({"passed": result.parity.passed, "parity": result.parity.to_json()}, indent=2)
              if args.json else f"verified   {result.path}\n{result.parity.summary()}")
        if not result.parity.passed:
            print(f"workbench: error: parity gate failed on {result.path}: " + "; ".join(result.parity.failures),
                  file=sys.stderr)
        return 0 if result.parity.passed else 1
    if args.json:
        print(json.dumps({"passed": result.passed, "parity": result.parity.to_json(),
                          "latency_onnxruntime": {"decode_ms_per_token": result.latency_onnxruntime.decode_ms_per_token.median,
                                                  "prefill_ms": result.latency_onnxruntime.prefill_ms.median,
                                                  "engine": result.latency_onnxruntime.engine}}, indent=2))
    else:
        print(f"verified   {result.path}")
        _print_gate(result.parity, [_latency_line(result.parity.engine, result.latency_onnxruntime)])
    if not result.passed:
        print(f"workbench: error: parity gate failed on {result.path}: " + "; ".join(result.parity.failures),
              file=sys.stderr)
        return 1
    return 0


def _sweep(args) -> int:
    from .measure.point import PointMeter
    from .store import ResultsStore
    from .sweep import parse_grid, run_grid, run_optuna

    if not args.grid and not args.optuna:
        raise ValueError("give grid axes (--grid prune.ratio=0,0.3,0.5 ...) or --optuna N")
    grid = parse_grid(args.grid) if args.grid else None  # bad axes are reported before anything loads
    store = ResultsStore(args.store)  # a SQLite path or a postgresql:// URL
    meter = PointMeter.load(args.model, args.episodes, limit=args.limit, progress=False, engine=args.engine,
                            dtype=args.dtype, device=args.device, vision=not args.text_only)
    if grid:
        result = run_grid(meter, grid, store, name=args.name, progress=not args.json, target=args.target)
    else:
        result, _ = run_optuna(meter, store, n_trials=args.optuna, study_name=args.name, seed=args.seed,
                               progress=not args.json, target=args.target)
    data = {"store": store.location, "steps": meter.settings | {"n": len(meter.steps)}, **result.to_json()}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"store      {store.location} ({len(store)} points)")
    print(f"sweep      {args.name}: {len(result.points)} points, {result.measured} measured, "
          f"{result.from_store} from the store, {len(result.skipped)} impossible skipped")
    print("Pareto front (step accuracy up, decode ms/token down, memory down):")
    for p in sorted(result.pareto, key=lambda p: p.target["decode_ms_per_token"] if p.target else p.decode_ms.median):
        low, high = p.step_interval
        at = (f"  at {p.target['name']}: {p.target['decode_ms_per_token']:.1f} ms/token, "
              f"{p.target['memory_bytes_at_context'] / 2**30:.2f} GiB") if p.target else ""
        print(f"  {p.step:.3f} [{low:.2f}, {high:.2f}]  {p.decode_ms.median:6.2f} ms/token  "
              f"{p.memory_bytes / 2**20:6.2f} MiB{at}  {p.label}  [{p.engine}]")
    return 0


def _worker(args) -> int:
    import optuna

    from .store import ResultsStore
    from .sweep import open_study, parse_grid
    from .worker import load_meter, run_processes, run_ray, run_worker, worker_args

    grid = parse_grid(args.grid) if args.grid else None
    n_trials = args.n_trials or (_grid_size(grid) if grid else 20)
    if args.processes < 1 or n_trials < 1 or args.heartbeat < 1 or args.claim_timeout <= args.heartbeat:
        raise ValueError("--processes and --n-trials must be >= 1, --heartbeat >= 1 s and --claim-timeout longer "
                         "than --heartbeat")
    store = ResultsStore(args.storage)  # refused here, before anything loads or spawns, if unusable
    meter_kwargs = {"model": args.model, "episodes": args.episodes, "limit": args.limit, "engine": args.engine,
                    "dtype": args.dtype, "device": args.device, "text_only": args.text_only}
    options = {"storage": store, "study": args.study, "n_trials": n_trials, "grid": grid, "target": args.target,
               "seed": args.seed, "heartbeat_s": args.heartbeat, "timeout_s": args.claim_timeout}
    say = None if args.json else (lambda line: print(line, file=sys.stderr))
    if args.ray:
        results = run_ray(args.ray, args.processes, meter_kwargs, **options)
    elif args.processes > 1:
        # the study (and optuna's tables) first, then the workers: they start on a ready database
        open_study(store, args.study, target=args.target, heartbeat_s=args.heartbeat, grace_s=args.claim_timeout)
        codes, results = run_processes(args.processes, worker_args(
            store, args.study, n_trials=n_trials, grid=args.grid, target=args.target, heartbeat_s=args.heartbeat,
            timeout_s=args.claim_timeout, **meter_kwargs), seed=args.seed)
        if any(codes):
            raise ValueError(f"worker processes exited with {codes}; their messages are above")
    else:
        results = [run_worker(functools.partial(load_meter, **meter_kwargs), log=say, **options)]
    study = optuna.load_study(study_name=args.study, storage=store.storage_url)
    finished = sum(t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL for t in study.trials)
    data = {"store": store.location, "points": len(store), "study": args.study, "finished": finished,
            "n_trials": n_trials, "workers": [dataclasses.asdict(r) for r in results]}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for r in results:
        print(f"worker     {r.worker}: {r.trials} trials, {r.measured} measured, {r.from_store} from the store, "
              f"waited {r.waited_s:.0f} s for other workers, {r.took_over} expired claims taken over")
    print(f"study      {args.study}: {finished} of {n_trials} trials finished")
    print(f"store      {store.location} ({len(store)} points); `workbench sweep --optuna {n_trials} --name "
          f"{args.study} --storage {store.location}` prints its Pareto front")
    return 0


def _grid_size(grid: dict) -> int:
    return functools.reduce(lambda n, values: n * len(values), grid.values(), 1)


def _engine_args(parser, default: str, store: bool = True) -> None:
    parser.add_argument("--engine", choices=("ort", "pytorch", "llama.cpp"), default=default,
                        help="ort: the fused ONNX graph the export writes, on ONNX Runtime; pytorch: eager "
                             "(the parity reference; also what runs 3/2-bit weights and KV policies); llama.cpp: "
                             f"the GGUF file `export --format gguf` writes (needs llama-cpp-python) (default {default})")
    parser.add_argument("--target", default=None, choices=("tiny", "glm-edge-1.5b", "autoglm-phone-9b"),
                        help="also measure latency and memory at this deployment shape (ONNX Runtime, random "
                             "weights of the recipe's precision and pruned shape; cached in the results store)")
    if store:
        parser.add_argument("--store", default=None, help="results database caching target measurements (default: "
                                                          "$AUTOGLM_WORKBENCH_STORE or ~/.cache/autoglm-workbench/results.db)")


def _device_args(parser) -> None:
    parser.add_argument("--device", default="cpu", help="where PyTorch runs the model: cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="parameter dtype the checkpoint loads in (default float32; a 9B model wants bfloat16 "
                             "on a 24 GB GPU)")
    parser.add_argument("--text-only", action="store_true",
                        help="a Glm4v checkpoint: load its language model alone and prompt it with the "
                             "accessibility-tree text (no processor files needed)")


_STORAGE_HELP = ("results database: a SQLite file path, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE "
                 "shared by workers on many machines; optuna's study lives in it too (default: "
                 "$AUTOGLM_WORKBENCH_STORE or ~/.cache/autoglm-workbench/results.db)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="AutoGLM Workbench command line.")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="measure accuracy, latency and memory of a model")
    ev.add_argument("--model", default=None,
                    help="HF-format GLM checkpoint folder (default: the embedded open-autoglm-tiny)")
    ev.add_argument("--episodes", default=None, help="JSONL episode file (default: data/episodes/eval.jsonl)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N steps")
    ev.add_argument("--recipe", default=None,
                    help="recipe JSON file (prune / quant sections); reports the optimized model "
                         "with KL and perplexity against the unoptimized one")
    _engine_args(ev, default="pytorch")
    _device_args(ev)
    ev.add_argument("--context", type=int, default=None,
                    help="context tokens the target's memory is computed for (default 25480, Open-AutoGLM's)")
    ev.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ev.set_defaults(run=_evaluate)
    ex = sub.add_parser("export", help="export a recipe to a verified ONNX folder (decoder with KV cache) or GGUF file")
    ex.add_argument("--recipe", default=None, help="recipe JSON file (prune / quant sections; none: float32 baseline)")
    ex.add_argument("--out", required=True, help="folder to write (must not exist or be empty)")
    ex.add_argument("--model", default=None,
                    help="HF-format GLM checkpoint folder (default: the embedded open-autoglm-tiny)")
    ex.add_argument("--graph", choices=("plain", "fused"), default=None,
                    help="plain: dynamo export; fused: ONNX Runtime contrib operators (GroupQueryAttention, ...) "
                         "(default: fused for a GLM text decoder, the graph the workbench measures; plain for a "
                         "vision-language model's three graphs)")
    ex.add_argument("--episodes", default=None, help="JSONL eval episodes for the gate (default: data/episodes/eval.jsonl)")
    ex.add_argument("--limit", type=int, default=32, help="eval steps whose greedy actions the gate scores (default 32)")
    ex.add_argument("--quantize-lm-head", action="store_true", help="quantize the output projection too")
    ex.add_argument("--format", choices=("onnx", "gguf", "onnx,gguf"), default="onnx",
                    help="onnx: ONNX Runtime folder; gguf: llama.cpp file (its gate runs llama-cpp-python); "
                         "onnx,gguf: both, as DIR/onnx and DIR/gguf (default onnx)")
    ex.add_argument("--float-type", choices=("f32", "f16"), default="f32",
                    help="GGUF: float weights as F32 (exact) or F16 (half the bytes, rounded) (default f32)")
    ex.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    ex.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ex.set_defaults(run=_export)
    ve = sub.add_parser("verify", help="re-run the parity gate and ONNX Runtime measurement on an export folder")
    ve.add_argument("dir", help="the export folder")
    ve.add_argument("--model", default=None, help="the source checkpoint (default: the manifest's)")
    ve.add_argument("--episodes", default=None, help="JSONL eval episodes (default: the manifest's)")
    ve.add_argument("--json", action="store_true", help="print the result as JSON")
    ve.set_defaults(run=_verify)
    sw = sub.add_parser("sweep", help="measure a grid of recipes or an optuna study into the results store")
    sw.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                    help="a grid axis, repeatable, e.g. --grid prune.ratio=0,0.3,0.5 --grid quant.bits=8,4")
    sw.add_argument("--optuna", type=int, default=0, metavar="N",
                    help="instead of a grid: a multi-objective optuna study of N trials (resumed if it exists)")
    sw.add_argument("--name", default="sweep", help="the sweep's (or optuna study's) name")
    sw.add_argument("--model", default=None,
                    help="HF-format GLM checkpoint folder (default: the embedded open-autoglm-tiny)")
    sw.add_argument("--episodes", default=None, help="JSONL episode file (default: data/episodes/eval.jsonl)")
    sw.add_argument("--limit", type=int, default=48, help="steps measured per point (default 48)")
    sw.add_argument("--store", "--storage", dest="store", default=None, metavar="PATH_OR_URL", help=_STORAGE_HELP)
    sw.add_argument("--seed", type=int, default=0, help="optuna sampler seed")
    _engine_args(sw, default="ort", store=False)
    _device_args(sw)
    sw.add_argument("--json", action="store_true", help="print the summary and the Pareto points as JSON")
    sw.set_defaults(run=_sweep)
    wk = sub.add_parser("worker", help="join an optuna study and measure its trials (run one on every machine)",
                        description="Join the optuna study NAME in the results database and measure its trials "
                                    "until it holds --n-trials finished ones. Each recipe is claimed in the store "
                                    "while measured (a heartbeat renews the claim); a recipe another live worker "
                                    "holds is waited for, a stored one read back; a dead worker's claim and trial "
                                    "expire after --claim-timeout and are retried by another worker.")
    wk.add_argument("--storage", default=None, metavar="PATH_OR_URL", help=_STORAGE_HELP)
    wk.add_argument("--study", required=True, metavar="NAME", help="the optuna study (created if missing)")
    wk.add_argument("--n-trials", type=int, default=None, metavar="N",
                    help="the study's budget: finished trials of all workers together (default: the grid's size, "
                         "else 20)")
    wk.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                    help="sample this grid (each combination once, optuna's GridSampler) instead of NSGA-II over "
                         "the default space; every worker of a study must pass the same axes")
    wk.add_argument("--model", default=None,
                    help="HF-format GLM checkpoint folder (default: the embedded open-autoglm-tiny); the same "
                         "files on every machine (the store's fingerprint keys each point by the model)")
    wk.add_argument("--episodes", default=None, help="JSONL episode file (default: data/episodes/eval.jsonl)")
    wk.add_argument("--limit", type=int, default=48, help="steps measured per point (default 48)")
    wk.add_argument("--seed", type=int, default=None,
                    help="NSGA-II sampler seed (default random; --processes N gives SEED, SEED+1, ...; a --grid "
                         "is sampled in one order by every worker)")
    wk.add_argument("--processes", type=int, default=1, metavar="N",
                    help="run N worker processes on this machine (with --ray: N Ray tasks)")
    wk.add_argument("--ray", default=None, metavar="ADDRESS",
                    help="run the workers as Ray tasks on this cluster (ray.init(address=ADDRESS), e.g. auto or "
                         "ray://head:10001); needs the optional extra: pip install autoglm-workbench[cluster]")
    wk.add_argument("--heartbeat", type=int, default=10, metavar="S",
                    help="renew the claim and the optuna trial every S seconds while measuring (default 10)")
    wk.add_argument("--claim-timeout", type=int, default=60, metavar="S",
                    help="a claim or trial silent for S seconds has expired: its worker died, another takes the "
                         "recipe over and optuna retries the trial (default 60)")
    _engine_args(wk, default="ort", store=False)
    _device_args(wk)
    wk.add_argument("--json", action="store_true", help="print what the worker did as JSON")
    wk.set_defaults(run=_worker)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        print("workbench: error: --limit must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ModelLoadError, EpisodeError, StoreError, ValueError, LlamaCppMissing) as e:
        print(f"workbench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
