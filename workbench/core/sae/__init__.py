"""Sparse autoencoders over codec latents: architectures, activation store, trainer, files, metrics.

What the rest of the workbench calls:

- `load_sae(folder, latent_dim=codec.latent_dim)` -> `SAE` (eval mode, CPU), with ``sae.info`` (codec id,
  latent kind, per-feature ``max_activation``, ``log10_density``, where it came from).
- ``sae.encode(z) -> f`` [T, d_sae], ``sae.decode(f) -> ẑ`` [T, d_in] (torch), ``encode_np`` /
  ``decode_np`` / ``reconstruct_np`` (numpy), ``sae.W_dec`` [d_sae, d_in] (``W_dec_np``), ``d_in``,
  ``d_sae``, ``architecture``; relu-rmsnorm also ``encode_prenorm`` / ``decode_prenorm`` (see model.py).
- `train_sae(TrainJob(...))` (pipeline.py) for corpus -> SAE folder; `Trainer` / `TrainControl` for
  finer control; `build_store` / `ActivationStore` for cached latents.
"""

from workbench.core.sae.io import SAEInfo, load_sae, save_sae
from workbench.core.sae.model import ARCHITECTURES, SAE, TRAINABLE
from workbench.core.sae.store import ActivationStore, build_store
from workbench.core.sae.trainer import TrainConfig, TrainControl, Trainer, TrainingDivergedError

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "TRAINABLE",
    "ActivationStore",
    "SAEInfo",
    "TrainConfig",
    "TrainControl",
    "Trainer",
    "TrainingDivergedError",
    "build_store",
    "load_sae",
    "save_sae",
]
