"""The images test (`test_images.py`) runs from scripts/test-images, which builds the images
first and names their tag in IVR_TEST_IMAGES; the other deployment tests run with the rest."""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("IVR_TEST_IMAGES") else ["test_images.py"]
