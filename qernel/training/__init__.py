"""Foundation VMC: per-group centred gradients and natural gradients, driver, checkpoints."""
