"""torch_npu.contrib: only what lab notebooks import."""
