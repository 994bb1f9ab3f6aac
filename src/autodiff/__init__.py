"""Autodiff from scratch (parts 1 and 2 of the report): the scalar `Var` engine, networks of
Vars, backprop in matrix form, the course's data. The study (`train`), `benchmark` and
`split_gap` are not imported here, so `import src.autodiff` stays light."""

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
