"pytest configuration of the ecor tests."
def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: drives JupyterLab / the docs site in headless Chromium (runs by default; -m "not browser" deselects)')
