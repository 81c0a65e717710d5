"""Model loading: GLM-family checkpoints (embedded tiny model, local folders, hub ids)."""
from workbench.model.load import DEFAULT_MODEL, SUPPORTED_ARCHITECTURES, ModelLoadError, load_model

__all__ = ["DEFAULT_MODEL", "SUPPORTED_ARCHITECTURES", "ModelLoadError", "load_model"]
