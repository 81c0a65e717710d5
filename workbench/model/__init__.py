"""Model loading: GLM-family checkpoints (embedded tiny model, local folders, hub ids)."""
from workbench.model.load import (DEFAULT_MODEL, DEFAULT_VL_MODEL, EMBEDDED_MODELS, SUPPORTED_ARCHITECTURES,
                                  ModelLoadError, load_model)
from workbench.model.synthetic import FAMILIES, random_model, write_random_checkpoint

__all__ = ["DEFAULT_MODEL", "DEFAULT_VL_MODEL", "EMBEDDED_MODELS", "FAMILIES", "SUPPORTED_ARCHITECTURES", "ModelLoadError", "load_model", "random_model",
           "write_random_checkpoint"]
