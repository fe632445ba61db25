"""normclaims' shared fine-tuning harness.

Importing this package is cheap: torch is imported only by the modules that train.
"""

# bump when a change alters what a stored run means. 2: the plateau schedule really lowers the
# learning rate (a per-step constant schedule used to undo it); under bf16 autocast, random resized
# crops sample their grid in fp32
HARNESS_VERSION = "2"
