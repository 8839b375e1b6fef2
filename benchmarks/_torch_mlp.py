"""The PyTorch twin of a tuilab MLP that the benchmarks time tuilab against."""

from __future__ import annotations


def torch_mlp(sizes: list[int], act: str):
    """torch.nn.Sequential of Linear layers sizes[0] -> ... -> sizes[-1], `act` between them (none after the last),
    with torch's default initialisation; imports torch only when called."""
    import torch

    make_act = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}[act]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(make_act())
    return torch.nn.Sequential(*layers)
