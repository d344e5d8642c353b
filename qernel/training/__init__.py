"""Foundation VMC: per-group centered gradients and natural gradients, the NetKet driver, its callbacks, checkpoints."""

from .callbacks import CheckpointCallback, GroupProgressBar, JsonLinesLog
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .driver import FoundationVMC, GroupStats, NonFiniteError, read_log
from .signals import TrainingInterrupted
from .gradient import centered_jacobian, centered_local_energies, foundation_gradient, natural_gradient
from .gradient import centred_jacobian, centred_local_energies  # deprecated spellings, not in __all__
from .groups import center_within_groups, clip_within_groups, group_counts, group_means, group_sample_weights

__all__ = [
    "CheckpointCallback",
    "GroupProgressBar",
    "JsonLinesLog",
    "TrainingInterrupted",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "FoundationVMC",
    "GroupStats",
    "NonFiniteError",
    "read_log",
    "centered_jacobian",
    "centered_local_energies",
    "foundation_gradient",
    "natural_gradient",
    "center_within_groups",
    "clip_within_groups",
    "group_counts",
    "group_means",
    "group_sample_weights",
]
