"""Data helpers behind the load, split and features tasks, and the torch Datasets."""

from tasks.data.datasets import make_dataset
from tasks.data.images import ImageFileDataset, ImageTransform

__all__ = ["ImageFileDataset", "ImageTransform", "make_dataset"]
