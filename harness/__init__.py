"""normclaims' shared fine-tuning harness.

Importing this package is cheap: torch is imported only by the modules that train.
"""

HARNESS_VERSION = "1"  # bump when a change alters what a stored run means
