"""The math above the kernels: a network's parameter layout and initialisers (model), the optimizer registry
(optim), learning-rate schedules (schedules), what an optimizer does inside a run (internals), and L-BFGS (lbfgs).
Nothing here runs a training loop; training/ does."""
