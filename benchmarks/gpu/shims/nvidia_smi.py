"""GPU kit shim for ``nvidia_smi`` (nvidia-ml-py3, published as an sdist only): chgnet imports it to rank GPUs
by free memory. nvidia-ml-py3's module is a thin layer over NVML; this re-exports the image's ``pynvml``
(nvidia-ml-py), whose functions have the same names. Used only by benchmarks/gpu/device.sh's wheel
installs."""

from pynvml import *  # noqa: F403
