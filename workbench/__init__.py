"""AutoGLM Workbench: measure and trade off accuracy, latency and memory of GLM phone agents."""
__version__ = "0.1.0"
