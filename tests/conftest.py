import numpy as np
import pytest

#: test files whose RTL builds share hdl/build/<unit>_<sim>_<params>/ (hdl.runner.run_unit): under
#: pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) they run on one worker, one after another
_SHARED_BUILD_FILES = {"test_hdl_nm_array.py", "test_hdl_nm_dot.py", "test_calibrate.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in _SHARED_BUILD_FILES:
            item.add_marker(pytest.mark.xdist_group("hdl-build"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
