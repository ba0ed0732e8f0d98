"""Training: typed configs (args.py) and the solver with train/valid stages."""

from soundalike.train.args import TrainConfig, load_config
from soundalike.train.solver import ContrastiveSolver, train

__all__ = ["ContrastiveSolver", "TrainConfig", "load_config", "train"]
