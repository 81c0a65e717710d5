"""The ONNX Runtime engine: decoder graphs written from the model's own weights (float, or the
workbench's 4- / 8-bit codes packed into MatMulNBits), sessions and the decode loop.

Both the measurement (`PointMeter(engine="ort")`) and `workbench export` run these graphs, so a
point on the plot is the artifact the export writes.

    from workbench.ort import fused_decoder
    dec = fused_decoder(model)               # the fused graph of the model, in memory
    gen = dec.greedy(ids, eos_id)
"""
from .contract import OPSET, DecoderShape, input_names, output_names
from .decoder import GraphError, GraphIO, OrtDecoder, encode, fused_decoder, graph_io, make_session
from .graph import build_fused, export_fused, initializer_bytes, precision_label, state_bytes
from .nbits import LinearCodes, NBitsWeight, codes_of, from_nbits, to_nbits

__all__ = ["DecoderShape", "GraphError", "GraphIO", "LinearCodes", "NBitsWeight", "OPSET", "OrtDecoder",
           "build_fused", "codes_of", "encode", "export_fused", "from_nbits", "fused_decoder", "graph_io",
           "initializer_bytes", "input_names", "make_session", "output_names", "precision_label", "state_bytes",
           "to_nbits"]
