"""Live serving: real threads feed a Poisson stream of agent steps to a dynamic batcher that runs
the real model, and wall-clock latencies are measured per request.

One arrival thread sleeps until each arrival time and enqueues the request. One worker thread
waits for the first queued request, then closes the batch when ``window_ms`` has passed since that
request *arrived* or ``max_batch`` requests are in it (whichever is first; a request queued while
the worker was busy may thus be batched at once), and runs the batch through
``generate_batch``. A request's latency runs from its enqueue time to the moment its last token is
known. Prompts are tokenized before the clock starts (tokenization is not served here).
"""
from __future__ import annotations

import queue
import threading
import time

from tqdm.auto import tqdm

from .arrivals import poisson_arrivals, step_prompts
from .batch import MAX_NEW_TOKENS, generate_batch
from .config import BatchingConfig
from .report import RequestRecord, ServingReport, build_report

_END = object()  # the arrival thread's last item


def _arrive(q: queue.Queue, t0: float, arrivals: list[float]) -> None:
    for i, a in enumerate(arrivals):
        delay = t0 + a - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        q.put((i, time.perf_counter() - t0))
    q.put(_END)


def _next_batch(q: queue.Queue, t0: float, config: BatchingConfig):
    """Block for the first request, then collect until the window (from its arrival) or max_batch.

    Returns (list of (index, arrival_s), stream ended)."""
    first = q.get()
    if first is _END:
        return [], True
    batch, ended = [first], False
    deadline = t0 + first[1] + config.window_ms / 1e3
    while len(batch) < config.max_batch:
        remaining = deadline - time.perf_counter()
        try:
            item = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
        except queue.Empty:
            break
        if item is _END:  # no more requests, but the server cannot know: keep the window's wait
            ended = True
            remaining = deadline - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            break
        batch.append(item)
    return batch, ended


def serve_live(model, tokenizer, steps, config: BatchingConfig, n_requests: int, seed: int = 0, *,
               max_new_tokens: int = MAX_NEW_TOKENS, warmup: bool = True,
               progress: bool = True) -> ServingReport:
    """Serve a Poisson stream of agent steps through the real model with dynamic batching.

    Args:
        model: causal LM in eval mode.
        tokenizer: its tokenizer (eos_token_id ends a request).
        steps: task Steps; request i is steps[i % len(steps)].
        config: batching window, max batch and arrival rate.
        n_requests: requests in the stream.
        seed: seed of the arrival times.
        max_new_tokens: cap on generated tokens per request.
        warmup: run one untimed batch first (first calls are slow).
        progress: show a tqdm bar of answered requests.
    Returns:
        ServingReport (mode "live") with per-request records, times in seconds from the stream start.
    """
    prompts = step_prompts(tokenizer, steps)
    eos = tokenizer.eos_token_id
    if warmup:
        generate_batch(model, prompts[:min(2, len(prompts))], eos, max_new_tokens=4)
    arrivals = poisson_arrivals(n_requests, config.arrival_rate, seed)
    q: queue.Queue = queue.Queue()
    records: list[RequestRecord] = []
    errors: list[BaseException] = []
    bar = tqdm(total=n_requests, desc=f"live {config.window_ms:g} ms @ {config.arrival_rate:g}/s",
               disable=not progress, mininterval=1)

    def work():
        try:
            ended, k = False, 0
            while not ended:
                batch, ended = _next_batch(q, t0, config)
                if not batch:
                    break
                start = time.perf_counter() - t0
                res = generate_batch(model, [prompts[i % len(prompts)] for i, _ in batch], eos,
                                     max_new_tokens=max_new_tokens)
                for j, (i, arrived) in enumerate(batch):
                    records.append(RequestRecord(i, arrived, start, start + res.finish_s[j], k, len(batch),
                                                 len(res.tokens[j])))
                bar.update(len(batch))
                k += 1
        except BaseException as e:  # surfaced in the caller's thread
            errors.append(e)

    t0 = time.perf_counter() + 0.02
    threads = [threading.Thread(target=_arrive, args=(q, t0, arrivals), daemon=True),
               threading.Thread(target=work, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    if errors:
        raise errors[0]
    return build_report("live", config, records)
