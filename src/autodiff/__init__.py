"""Autodiff from scratch (parts 1 and 2 of the report): the scalar `Var` engine, networks
built from Vars, backprop in matrix form, and the course's regression data.

The fitting study lives in `src.autodiff.train` (Hydra), the timings in
`src.autodiff.benchmark`, the report's part-2 claim over data seeds in `src.autodiff.split_gap`;
none is imported here, so `import src.autodiff` stays light.
"""

from src.autodiff.data import Data, make_data
from src.autodiff.engine import Var
from src.autodiff.matrix import MatrixNet
from src.autodiff.nn import (
    ACTIVATIONS,
    ConstantInitializer,
    DenseLayer,
    GlorotInitializer,
    HeInitializer,
    Network,
    NormalInitializer,
    build_network,
    mean_squared_error,
    squared_error,
)

__all__ = [
    "ACTIVATIONS",
    "ConstantInitializer",
    "Data",
    "DenseLayer",
    "GlorotInitializer",
    "HeInitializer",
    "MatrixNet",
    "Network",
    "NormalInitializer",
    "Var",
    "build_network",
    "make_data",
    "mean_squared_error",
    "squared_error",
]
