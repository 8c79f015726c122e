"""The real module redirects torch.cuda calls to the NPU; without an NPU there is nothing to redirect."""
