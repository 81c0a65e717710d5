"""The llama.cpp engine: the recipe's model written as a GGUF file (its own quantized codes packed into
the GGUF blocks that hold them) and run through llama-cpp-python with the decoder interface the parity
gate, the accuracy scorer and the latency timer use for ONNX Runtime.

    from workbench.llamacpp import LlamaCppDecoder, write_gguf
    write_gguf(model, tokenizer, "deploy/model.gguf")
    gen = LlamaCppDecoder("deploy/model.gguf").greedy(ids, eos_id)

`gguf` is a dependency; llama-cpp-python is optional (it builds llama.cpp from source): importing this
package does not need it, `LlamaCppDecoder` raises `LlamaCppMissing` naming how to install it.
"""
from .blocks import BLOCK, GGUFTensor, float_tensor, pack_codes, read_back, weights_of
from .decoder import INSTALL, LlamaCppDecoder, LlamaCppMissing, has_amx, llama_cpp, system_info, version
from .writer import ARCH, ARCHS, FLOAT_TYPES, GGUFWriteError, GGUFWritten, check_writable, write_gguf

__all__ = ["ARCH", "ARCHS", "BLOCK", "FLOAT_TYPES", "GGUFTensor", "GGUFWriteError", "GGUFWritten", "INSTALL",
           "LlamaCppDecoder", "LlamaCppMissing", "check_writable", "float_tensor", "has_amx", "llama_cpp",
           "pack_codes", "read_back", "system_info", "version", "weights_of", "write_gguf"]
