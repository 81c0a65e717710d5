"""Shared fixtures of the export tests: small gate settings and one float32 baseline folder per session."""
import pytest

from export_settings import FAST


@pytest.fixture(scope="session")
def baseline_export(tiny, tmp_path_factory):
    """ExportResult of the float32 baseline of open-autoglm-tiny (do not modify its folder: copy it)."""
    from workbench.export import export_onnx

    model, tok = tiny
    return export_onnx(tmp_path_factory.mktemp("export") / "baseline", None, model=model, tokenizer=tok, **FAST)
