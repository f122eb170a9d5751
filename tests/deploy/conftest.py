"""The images and install tests (`test_images.py`, `test_install.py`) run from scripts/test-images,
which builds the images first and names their tag in IVR_TEST_IMAGES; the other deployment
tests run with the rest."""

from __future__ import annotations

import os

SLOW = ["test_images.py", "test_install.py"]
collect_ignore = [] if os.environ.get("IVR_TEST_IMAGES") else SLOW
