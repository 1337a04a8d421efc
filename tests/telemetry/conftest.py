"""CDNOW fixtures for the LTV tests: the files live in tests/data/ltv (see its SOURCES.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dropline.telemetry.ltv import CustomerSummary, summarise_transactions
from dropline.telemetry.transactions import Transactions, load_transactions

LTV_DATA = Path(__file__).resolve().parents[1] / "data" / "ltv"
CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"


@pytest.fixture(scope="session")
def ltv_data() -> Path:
    return LTV_DATA


@pytest.fixture(scope="session")
def cdnow_sample_log() -> Transactions:
    return load_transactions(LTV_DATA / "CDNOW_sample.txt", format="cdnow")


@pytest.fixture(scope="session")
def cdnow_sample_summary(cdnow_sample_log: Transactions) -> CustomerSummary:
    log = cdnow_sample_log
    return summarise_transactions(log.customer_ids, log.dates, log.amounts,
                                  calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END)


@pytest.fixture(scope="session")
def published_summary() -> dict[str, np.ndarray]:
    """The published (ID, x, t_x, T, zbar) table of the 2,357-customer sample."""
    with (LTV_DATA / "cdnow_customers_summary_with_transactions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}
