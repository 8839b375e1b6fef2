"""Plain-Python orchestration over the kernels. Never imports textual."""
