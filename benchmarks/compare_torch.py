"""Train a network preset in tuilab and the same recipe in PyTorch, on the same prepared data.

    python benchmarks/compare_torch.py shallow-sigmoid --dataset fashion-mnist [--epochs N]

Same data split, normalisation, architecture, initialiser, optimizer and batch size;
each side draws its own initial weights and minibatch order, so the two accuracies
differ by run-to-run noise only. Prints a table: accuracy, loss and seconds for each.
Single-run presets with dense layers, softmax + cross entropy, and an optimizer that
torch.optim has (sgd/momentum/nesterov, adam, adamw, rmsprop, adagrad).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from tuilab.engine.config.presets import load_experiment
from tuilab.engine.training.runner import DataCache, DataOptions, run_network


def torch_run(run, data, seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    m, o, t = run.tables["model"], run.tables["optimizer"], run.tables["train"]
    sizes = [data.n_inputs, *m["hidden"], data.n_outputs]
    acts = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    layers = []
    for k in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[k], sizes[k + 1])
        init = m["init"]
        if init == "xavier_normal":
            torch.nn.init.xavier_normal_(lin.weight)
        elif init == "xavier_uniform":
            torch.nn.init.xavier_uniform_(lin.weight)
        elif init == "kaiming_uniform":
            torch.nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
        elif init == "kaiming_normal":
            torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(acts[m["activation"]]())
    net = torch.nn.Sequential(*layers)
    name = o["name"]
    if name in ("sgd", "momentum", "nesterov"):
        opt = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                              weight_decay=o["weight_decay"], dampening=o["dampening"])
    elif name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        opt = cls(net.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
                  weight_decay=o["weight_decay"])
    elif name == "rmsprop":
        opt = torch.optim.RMSprop(net.parameters(), lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                                  momentum=o["momentum"], centered=o["centered"],
                                  weight_decay=o["weight_decay"])
    elif name == "adagrad":
        opt = torch.optim.Adagrad(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
    else:
        raise SystemExit(f"no torch twin for optimizer {name!r} in this script")
    X = torch.from_numpy(data.X_train)
    y = torch.from_numpy(data.labels_train)
    Xt, yt = torch.from_numpy(data.X_test), torch.from_numpy(data.labels_test)
    loss_fn = torch.nn.CrossEntropyLoss()
    bs = t["batch_size"] or len(X)
    g = torch.Generator().manual_seed(seed)
    began = time.perf_counter()
    for _ in range(t["epochs"]):
        perm = torch.randperm(len(X), generator=g)
        for s in range(0, len(X), bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        out = net(Xt)
        return {"test_accuracy": float((out.argmax(1) == yt).double().mean()),
                "test_loss": float(loss_fn(out, yt)), "seconds": seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset")
    p.add_argument("--dataset")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    a = p.parse_args(argv)
    over = [("train.seed", a.seed)]
    if a.dataset:
        over.append(("data.name", a.dataset))
    if a.epochs:
        over.append(("train.epochs", a.epochs))
    exp = load_experiment(a.preset, over)
    if len(exp.runs) != 1 or exp.lab != "network":
        raise SystemExit("compare_torch takes a preset with one network run")
    run = exp.runs[0]
    if run.model.loss != "cross_entropy":
        raise SystemExit("compare_torch needs softmax + cross entropy")
    options = DataOptions(data_dir=a.data_dir, strict=True)
    data = DataCache(options, lambda e: None).get(run)
    began = time.perf_counter()
    ours = run_network(exp, data=options).runs[0]
    ours_s = time.perf_counter() - began
    theirs = torch_run(run, data, a.seed)
    print(f"{exp.name} on {data.name}: {run['train']['epochs']} epochs, batch {run['train']['batch_size']}, "
          f"{run['optimizer']['name']} lr={run['optimizer']['lr']:g}, seed {a.seed}")
    print(f"{'':10s}{'test acc':>10s}{'test loss':>11s}{'seconds':>9s}")
    print(f"{'tuilab':10s}{ours['test_accuracy']:>10.2%}{ours['test_loss']:>11.4f}{ours_s:>9.1f}")
    print(f"{'pytorch':10s}{theirs['test_accuracy']:>10.2%}{theirs['test_loss']:>11.4f}"
          f"{theirs['seconds']:>9.1f}")
    gap = 100 * (ours["test_accuracy"] - theirs["test_accuracy"])
    print(f"difference: {gap:+.2f} points" + ("" if math.isfinite(gap) else " (no result)"))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
