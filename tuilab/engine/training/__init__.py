"""The training path: a run's Trainer (train), the runner of many runs (runner) and the learning-rate range test
(lr_range); below them the ways a chunk is run and their timing (fit, paths, autotune, warmup), runs as tasks on
processes or Dask (tasks, executors, waves), checkpoints, successive halving, and (in threads) the
process-global threading state they share: the core budget and BLAS's threads."""
