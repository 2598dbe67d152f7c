"""The network on arrays: parameters, stacked forward/backward, losses, optimizers, training."""
