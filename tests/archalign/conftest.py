"""A real browser for the tests of archalign's HTML pages (the similarity report, the
diff page): Debian's chromium through chromedriver (selenium, in the `test` extra), with
the network off; where no browser can be had, the tests that ask for one skip and say why.
"""
from __future__ import annotations
import shutil

import pytest


def _browser(profile):
    """A headless chromium with the network off, its profile in ``profile``, or a skip
    saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install -e '.[test]')")
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                  "google-chrome"))), None)
    driver_binary = shutil.which("chromedriver")
    if binary is None or driver_binary is None:
        pytest.skip("no chromium / chromedriver on PATH (apt-get install chromium "
                    "chromium-driver; .ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # without the background-networking switches chromium dials out at start-up
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_binary), options=options)
    except Exception as exc:  # noqa: BLE001 - any failure to start means: no browser here
        pytest.skip(f"chromium would not start: {type(exc).__name__}: {str(exc)[:200]}")
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                  upload_throughput=0)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # under pytest's temporary root, so the profile is cleaned up with it
    driver = _browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()
