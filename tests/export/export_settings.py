"""Gate settings the export tests share (a module of its own: `conftest` is not importable by name reliably)."""

# Small eval subsets keep each export to a few seconds once the float graph is exported (once per
# process; the exporter itself takes ~12 s on the tiny model).
FAST = dict(accuracy_steps=4, parity_prompts=2, decode_steps=4, latency_repeats=2, progress=False)
