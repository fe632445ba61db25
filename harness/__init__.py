"""normclaims' shared fine-tuning harness.

Importing this package is cheap: torch is imported only by the modules that train.
"""

# part of every run's key: bump it when a change alters what a stored run means, so stored runs
# are retrained rather than mixed with new ones
HARNESS_VERSION = "3"
