"""Data helpers behind the load, split and features tasks, and the torch Datasets."""

from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.data.images import ImageFileDataset, ImageTransform

__all__ = ["ImageFileDataset", "ImageTransform", "make_dataset"]
