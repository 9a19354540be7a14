"""platonic-mlip: a common, comparable space for the latent features of foundation MLIPs."""

__version__ = "0.1.0"
