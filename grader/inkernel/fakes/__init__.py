"""This folder (not the package) is put on the kernel's sys.path without an NPU,
so that the student's `import torch_npu` finds fakes/torch_npu. The file exists
only so that packaging ships the folder."""
