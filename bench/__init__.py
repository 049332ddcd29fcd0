"""layerbench: measure what virtualization layers cost.

This module must stay standard-library only: the benchmarked app (bench.app) is
imported through it inside a FROM-scratch container and a VM initramfs.
"""

__version__ = "0.1.0"
