"""The default pipeline written by hand with Lightning: the baseline of the overhead benchmark.

Same work as ``ginpipe run configs/base.gin configs/models/resnet.gin``: scikit-learn's
bundled digits as (1, 8, 8) images scaled by 1/16, the same stratified split (test 20 %
first, then val 10 % of all rows, seed 0), the same ResNet class and size, AdamW with
OneCycleLR stepped per batch, batch size 128, 20 epochs on one CPU process with
deterministic kernels, a ModelCheckpoint keeping the best epoch by val accuracy and one
writing ``last.ckpt`` at the end of every epoch, a CSVLogger, and the test accuracy of the
best checkpoint at the end.

``last.ckpt`` has its own callback, as in ``fit``: since Lightning 2.6,
``ModelCheckpoint(save_last=True)`` rewrites it only in an epoch whose val accuracy
improved, so a script using it would write fewer checkpoints than ``fit`` and resume from an
older epoch.

    python benchmarks/baselines/train_digits.py --out DIR
    python benchmarks/baselines/train_digits.py --out DIR --resume DIR/checkpoints/last.ckpt

``--resume`` continues an interrupted run with ``trainer.fit(..., ckpt_path=...)``, as a
hand-written script would. With ``$GINPIPE_BENCH_CLOCK`` set, the first training batch is
timed and training stops there (``benchmarks/clock.py``, the same callback ginpipe's
benchmark runs use).

Prints one JSON line: test accuracy and the seconds of each phase.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from benchmarks.clock import FirstStepClock
from ginpipe.tasks.models.resnet import ResNet

# The values of configs/base.gin, configs/data/digits.gin, configs/trainer/cpu.gin and
# configs/models/resnet.gin; benchmarks/overhead.py checks them against a real run.
SETTINGS = {
    "seed_everything.seed": 0,
    "split_dataset.test_size": 0.2,
    "split_dataset.val_size": 0.1,
    "split_dataset.seed": 0,
    "make_features.scale": 16.0,
    "ResNet.width": 32,
    "ResNet.blocks_per_stage": [2, 2],
    "AdamW.lr": 0.01,  # the LR macro; one-cycle sets the starting rate itself
    "AdamW.weight_decay": 5e-4,
    "OneCycleLR.max_lr": 0.01,
    "fit.batch_size": 128,
    "Trainer.max_epochs": 20,
    "Trainer.deterministic": True,
}
S = SETTINGS  # short name for the code below


class LitClassifier(pl.LightningModule):
    """Cross-entropy training with accuracy logging, AdamW and a per-step OneCycleLR."""

    def __init__(self, network: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.network = network
        self.loss = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.network(x)
        loss = self.loss(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.network(x)
        self.val_acc(logits, y)
        self.log("val_loss", self.loss(logits, y), on_epoch=True, batch_size=len(y))
        self.log("val_acc", self.val_acc, on_epoch=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_acc(self.network(x), y)
        self.log("test_acc", self.test_acc, on_epoch=True)

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=S["AdamW.lr"], weight_decay=S["AdamW.weight_decay"]
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=S["OneCycleLR.max_lr"],
            total_steps=int(self.trainer.estimated_stepping_batches),
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def split_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified: the test rows first, then val (a share of all rows) from the rest."""
    rows = np.arange(len(labels))
    rest, test = train_test_split(
        rows,
        test_size=S["split_dataset.test_size"],
        random_state=S["split_dataset.seed"],
        stratify=labels,
    )
    n_val = round(S["split_dataset.val_size"] * len(labels))
    train, val = train_test_split(
        rest, test_size=n_val, random_state=S["split_dataset.seed"], stratify=labels[rest]
    )
    return train, val, test


def loader(x: np.ndarray, y: np.ndarray, shuffle: bool) -> DataLoader:
    dataset = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return DataLoader(dataset, batch_size=S["fit.batch_size"], shuffle=shuffle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoints and logs go here")
    parser.add_argument("--resume", type=Path, help="a checkpoint to continue training from")
    args = parser.parse_args()
    out = args.out
    phases: dict[str, float] = {}
    start = time.perf_counter()

    pl.seed_everything(S["seed_everything.seed"], workers=True, verbose=False)
    digits = load_digits()
    images = digits.images[:, np.newaxis].astype(np.float32) / S["make_features.scale"]
    labels = digits.target.astype(np.int64)
    train, val, test = split_rows(labels)
    phases["data"] = time.perf_counter() - start

    network = ResNet(
        num_classes=10,
        input_shape=images.shape[1:],
        width=S["ResNet.width"],
        blocks_per_stage=S["ResNet.blocks_per_stage"],
    )
    model = LitClassifier(network, num_classes=10)
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints", monitor="val_acc", mode="max", save_top_k=1
    )
    last = ModelCheckpoint(
        dirpath=out / "checkpoints", filename="last", enable_version_counter=False
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        deterministic=S["Trainer.deterministic"],
        max_epochs=S["Trainer.max_epochs"],
        callbacks=[checkpoint, last, FirstStepClock()],
        logger=CSVLogger(out / "logs"),
        default_root_dir=out,
        enable_progress_bar=False,  # output goes to a file, as in the ginpipe runs measured
    )
    mark = time.perf_counter()
    trainer.fit(
        model,
        loader(images[train], labels[train], True),
        loader(images[val], labels[val], False),
        ckpt_path=args.resume,
    )
    phases["fit"] = time.perf_counter() - mark

    mark = time.perf_counter()
    [scores] = trainer.test(
        model, loader(images[test], labels[test], False), ckpt_path="best", verbose=False
    )
    phases["test"] = time.perf_counter() - mark
    print(json.dumps({"accuracy": scores["test_acc"], "phase_seconds": phases}))


if __name__ == "__main__":
    main()
