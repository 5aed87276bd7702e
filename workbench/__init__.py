"""SAE Audio Workbench: sparse autoencoders over neural audio codec latents."""

__version__ = "0.1.0"
