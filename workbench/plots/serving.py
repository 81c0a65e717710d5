"""Serving and KV-cache figures: batching latency and throughput, service times, latency CDFs, caches."""
from __future__ import annotations

import plotly.graph_objects as go

from .style import _COLORS


def serving_figure(reports, live=(), *, title: str = "", mark_window: float | None = None) -> go.Figure:
    """Batching: p50/p99 latency and throughput against the batching window, one colour per arrival rate.

    Args:
        reports: simulated ServingReports (workbench.serve), e.g. from `sweep`; lines.
        live: live-measured ServingReports drawn as markers over the lines (same colour per rate).
        title: figure title.
        mark_window: draw a vertical line at this window (ms), e.g. the explorer's current setting.
    Returns:
        go.Figure with two panels: latency (log scale; p50 solid, p99 dashed) and throughput.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["latency per request (ms): p50 solid, p99 dashed",
                                        "throughput (requests/s)"])
    rates = sorted({r.arrival_rate for r in reports} | {r.arrival_rate for r in live})
    color = {rate: _COLORS[i % len(_COLORS)] for i, rate in enumerate(rates)}
    for rate in rates:
        pts = sorted((r for r in reports if r.arrival_rate == rate), key=lambda r: r.window_ms)
        if not pts:
            continue
        xs, name = [r.window_ms for r in pts], f"{rate:g} req/s"
        info = [[r.max_batch, r.mean_batch, r.queue_wait_share, r.n] for r in pts]
        hover = ("window %{x} ms: %{y:.4g}<br>max batch %{customdata[0]}, mean batch %{customdata[1]:.2f}, "
                 "queue wait %{customdata[2]:.0%} (n=%{customdata[3]}, simulated)<extra>" + name + "</extra>")
        for key, dash, show in (("p50_ms", "solid", True), ("p99_ms", "dash", False)):
            fig.add_trace(go.Scatter(x=xs, y=[getattr(r, key) for r in pts], mode="lines", name=name,
                                     legendgroup=name, showlegend=show, customdata=info, hovertemplate=hover,
                                     line=dict(color=color[rate], dash=dash)), row=1, col=1)
        fig.add_trace(go.Scatter(x=xs, y=[r.throughput_rps for r in pts], mode="lines", name=name,
                                 legendgroup=name, showlegend=False, customdata=info, hovertemplate=hover,
                                 line=dict(color=color[rate])), row=1, col=2)
    for k, r in enumerate(live):
        name = "live (measured)"
        common = dict(legendgroup="live", mode="markers", name=name,
                      hovertemplate=f"{r.label}<br>%{{y:.4g}} (n={r.n}, mean batch {r.mean_batch:.2f})<extra></extra>")
        fig.add_trace(go.Scatter(x=[r.window_ms, r.window_ms], y=[r.p50_ms, r.p99_ms], showlegend=k == 0,
                                 marker=dict(size=11, color=color[r.arrival_rate], symbol=["circle", "diamond"],
                                             line=dict(width=1.5, color="black")), **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=[r.window_ms], y=[r.throughput_rps], showlegend=False,
                                 marker=dict(size=11, color=color[r.arrival_rate], symbol="circle",
                                             line=dict(width=1.5, color="black")), **common), row=1, col=2)
    if mark_window is not None:
        for col in (1, 2):
            fig.add_vline(x=mark_window, line=dict(color="#888", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="batching window (ms)")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(title=title or "dynamic batching: simulated over measured service times (lines), "
                      "live (markers); PyTorch eager, this machine",
                      height=430, margin=dict(t=80, l=50, r=20, b=50), hovermode="closest",
                      legend=dict(title="arrival rate"))
    return fig


def service_figure(service) -> go.Figure:
    """Measured batch service times against batch size, next to the fitted cost model.

    Args:
        service: a ServiceModel (workbench.serve) with its measured BatchSamples.
    Returns:
        go.Figure with two panels: batch time per request (ms; measured median with p90 bar, fit, and
        its prefill and decode parts) and decode-step time against the rows still decoding (ms;
        measured median, fit).
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["batch time per request (ms)", "one decode step (ms)"])
    by = service.per_request_ms()
    sizes = list(by)
    fig.add_trace(go.Scatter(
        x=sizes, y=[by[b][0] for b in sizes], mode="markers", name="measured (median, p90 bar)",
        marker=dict(size=10, color=_COLORS[0]),
        error_y=dict(type="data", symmetric=False, array=[by[b][1] - by[b][0] for b in sizes],
                     arrayminus=[0] * len(sizes))), row=1, col=1)
    fit = {}
    for s in service.samples:
        fit.setdefault(s.batch_size, []).append(max(service.batch_finish_s(s.prompt_tokens, s.new_tokens))
                                                 / s.batch_size * 1e3)
    fig.add_trace(go.Scatter(x=sizes, y=[sorted(fit[b])[len(fit[b]) // 2] for b in sizes], mode="lines",
                             name="fitted model (same batches)", line=dict(color=_COLORS[1])), row=1, col=1)
    steps: dict[int, list[float]] = {}
    for s in service.samples:
        for b, dt in zip(s.active, s.decode_s):
            steps.setdefault(b, []).append(dt * 1e3)
    active = sorted(steps)
    fig.add_trace(go.Scatter(x=active, y=[sorted(steps[b])[len(steps[b]) // 2] for b in active], mode="markers",
                             name="measured decode step (median)", marker=dict(size=9, color=_COLORS[2])),
                  row=1, col=2)
    ctx = sorted(p for p, _ in service.profile)[len(service.profile) // 2] + 8  # a typical cache length
    fig.add_trace(go.Scatter(x=active, y=[service.decode_step_s(b, ctx) * 1e3 for b in active], mode="lines",
                             name="fitted decode step", line=dict(color=_COLORS[3])), row=1, col=2)
    split = service.per_request_split_ms()  # where a request's time goes: prefill (one by one) and decode
    for k, (phase, dash) in enumerate((("prefill", "dot"), ("decode", "dash"))):
        fig.add_trace(go.Scatter(x=sizes, y=[split[b][k] for b in sizes], mode="lines+markers",
                                 name=f"{phase} per request (measured median)",
                                 line=dict(color=_COLORS[4 + k], dash=dash)), row=1, col=1)
    fig.update_xaxes(title_text="batch size", row=1, col=1)
    fig.update_xaxes(title_text="rows still decoding", row=1, col=2)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(title=f"service times, measured ({service.engine}, {service.threads} thread(s)) "
                      f"and fitted (median error {service.fit_error():.0%})",
                      height=380, margin=dict(t=80, l=50, r=20, b=50))
    return fig


def latency_cdf_figure(reports, title: str = "") -> go.Figure:
    """Per-request latency distributions (empirical CDF), e.g. a live run next to its replay.

    Args:
        reports: ServingReports with per-request records.
        title: figure title.
    Returns:
        go.Figure, latency (ms) against the share of requests answered within it.
    """
    fig = go.Figure()
    for i, r in enumerate(reports):
        lat = sorted(q.latency_s * 1e3 for q in r.requests)
        fig.add_trace(go.Scatter(x=lat, y=[(k + 1) / len(lat) for k in range(len(lat))], mode="lines",
                                 line=dict(shape="hv", color=_COLORS[i % len(_COLORS)],
                                           dash="solid" if r.mode == "live" else "dash"),
                                 name=r.label))
    fig.update_layout(title=title or "latency per request: live (solid) and replay (dashed)", height=380,
                      xaxis_title="latency (ms)", yaxis_title="share of requests", yaxis_range=[0, 1.02],
                      margin=dict(t=60, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.25))
    return fig


def cache_figure(records, baseline: str = "full", title: str = "") -> go.Figure:
    """KV-cache settings side by side: step accuracy, mean step time and prefill time against KV bytes held.

    Args:
        records: CacheRecords (workbench.measure.cache), one per setting, measured in one run.
        baseline: label of the record drawn as the dashed reference on each panel.
        title: figure title.
    Returns:
        go.Figure with 3 panels sharing the x axis (KV MiB held by one request, peak).
    """
    from plotly.subplots import make_subplots

    panels = (("step", "step accuracy"), ("step_ms_mean", "mean ms per agent step"),
              ("prefill_ms_mean", "mean prefill ms per step"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels], horizontal_spacing=0.08)
    for i, r in enumerate(records):
        for k, (key, _) in enumerate(panels):
            fig.add_trace(go.Scatter(
                x=[r.kv_bytes / 2**20], y=[getattr(r, key)], mode="markers", name=r.label, legendgroup=r.label,
                showlegend=k == 0, marker=dict(size=12, color=_COLORS[i % len(_COLORS)]),
                customdata=[[r.label, r.n, r.prefix_hit_rate, r.decode_ms_per_token.median, r.engine]],
                hovertemplate=("%{customdata[0]}<br>%{y:.4g} at %{x:.2f} MiB KV<br>n=%{customdata[1]}, "
                               "prefix hit rate %{customdata[2]:.2f}, decode %{customdata[3]:.2f} ms/token"
                               "<br>%{customdata[4]}<extra></extra>")), row=1, col=k + 1)
    ref = next((r for r in records if r.label == baseline), None)
    if ref is not None:
        for k, (key, _) in enumerate(panels):
            fig.add_hline(y=getattr(ref, key), line=dict(dash="dash", color="#555"), row=1, col=k + 1)
    fig.update_xaxes(title_text="KV MiB held (peak, one request)")
    fig.update_layout(title=title or "KV-cache settings, measured on the eval episodes (PyTorch eager)",
                      height=420, margin=dict(t=70, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.25))
    return fig


def prefix_stream_figure(records, title: str = "") -> go.Figure:
    """Prefix cache over the request stream: share of each step's prompt reused, and the running hit rate.

    Args:
        records: CacheRecords with a prefix cache (their `reused_history` and `hit_rate_history`).
        title: figure title.
    Returns:
        go.Figure: reused share per request (markers) and cumulative hit rate (line), per record.
    """
    fig = go.Figure()
    for i, r in enumerate(records):
        color = _COLORS[i % len(_COLORS)]
        xs = list(range(1, len(r.reused_history) + 1))
        fig.add_trace(go.Scatter(x=xs, y=list(r.reused_history), mode="markers", marker=dict(size=5, color=color),
                                 name=f"{r.label}: prompt share reused", legendgroup=r.label))
        fig.add_trace(go.Scatter(x=xs, y=list(r.hit_rate_history), mode="lines", line=dict(color=color),
                                 name=f"{r.label}: hit rate so far", legendgroup=r.label))
    fig.update_layout(title=title or "prefix cache over the agent-step stream", height=380,
                      xaxis_title="request (agent step, episode order)", yaxis_title="share", yaxis_range=[0, 1.02],
                      margin=dict(t=60, l=50, r=20, b=50), legend=dict(orientation="h", y=-0.3))
    return fig
