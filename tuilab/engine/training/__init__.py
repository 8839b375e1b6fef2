"""The training path: a run's Trainer, the runner of many runs, the ways a chunk is run and their timing,
and (in threads) the process-global threading state they share: the core budget and BLAS's threads."""
