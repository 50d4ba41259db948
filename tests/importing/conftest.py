from pathlib import Path

import pytest

from loyalty.imports.complete_journey import dataset_load

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def cj_dataset():
    """The slice, dates as in the data (the tests compare with the files)."""
    return dataset_load(data_dir=DATA, keep_dates=True)
