"""Keep Lightning's console output to what a user can act on.

Silenced: the litlogger advertisement, torch's ``LeafSpec`` deprecation raised from inside
Lightning, and "`weights_only` was not set" when ``OnExceptionCheckpoint`` saves. The
"number of training batches is smaller than the logging interval" warning is avoided
instead, by ``trainer.fit_logging_interval``. Everything else (warnings about the user's
own settings, data or model) is left alone.
"""

from __future__ import annotations

import logging
import warnings

# Log lines (from Lightning's loggers) that carry no action for a ginpipe user.
UNACTIONABLE_LOGS = (
    "Tip: For seamless cloud logging",
    "`weights_only` was not set",
)
UNACTIONABLE_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")


class _Unactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in UNACTIONABLE_LOGS)


_FILTER = _Unactionable()


def silence_unactionable() -> None:
    """Install the filters (idempotent). Handlers get the filter too: Lightning's own
    handler sits on its package logger, and records of child loggers reach it without
    passing that logger's filters."""
    for name in LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        for target in (log, *log.handlers):
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)
    for pattern in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
