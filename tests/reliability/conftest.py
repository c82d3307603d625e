"""One intra-op thread: on 2 cores shared with other jobs, a second OpenMP thread mostly spins."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
