"""Sparse autoencoder architectures and the inference API the rest of the workbench uses.

Every architecture shares one affine encoder and one linear decoder (SAELens's tensor names and shapes):

    h = (z - b_dec) @ W_enc + b_enc          (the ``- b_dec`` only when ``apply_b_dec_to_input``)
    f = act(h)                               features [T, d_sae]
    ẑ = f @ W_dec + b_dec                    reconstruction [T, d_in]

and differ only in ``act`` and in the training loss:

- ``topk``: keep the k largest entries of h (then ReLU). Loss: MSE + AuxK (Gao et al. 2024): the top
  ``d_in // 2`` *dead* latents are asked to reconstruct the residual, which brings dead latents back.
- ``batchtopk``: during training the ``k * batch`` largest ReLU(h) of the whole batch (Bussmann et al.
  2024), so frames that need more features get more; the global threshold that this selection amounts
  to is tracked (EMA of the smallest kept activation) and used at inference as a JumpReLU:
  ``f = ReLU(h) * (h > threshold)``. Saved as SAELens does it: architecture ``jumprelu`` + ``threshold``.
- ``jumprelu``: inference only (SAEs trained elsewhere, and our ``batchtopk`` once saved).
- ``relu``: ``f = ReLU(h)``, loss MSE + λ·Σ f_i‖W_dec,i‖ (L1 weighted by decoder norms; saved as
  SAELens's ``standard``).
- ``relu-rmsnorm``: the variant of Paek et al. 2025 (audio-latent SAEs), defined here as

      u = ReLU(h)                                   the *pre-norm* code
      f = rms_weight ⊙ u / sqrt(mean_j(u_j²) + rms_eps)   RMSNorm over the d_sae features
      loss = MSE(ẑ, z) + λ·Σ u_i                    (L1 on the pre-norm code)

  RMSNorm fixes the overall size of the code, so scaling one feature up takes weight from the others
  and the decoded latent keeps a typical norm: steered latents stay in the distribution the codec's
  decoder knows. Because f does not change when u is scaled, the encoder could dodge the L1 by
  shrinking itself; so for this architecture the encoder's columns are also kept at unit norm during
  training (the decoder's rows are, for all architectures). Saved with ``architecture:
  "relu-rmsnorm"``, ``rms_eps`` in cfg.json and the tensor ``rms_weight`` [d_sae]; SAELens has no such
  architecture and will refuse it, our loader restores it.

Steering (``z' = z + (f' - f) @ W_dec``) edits the features f returned by `encode`. For
``relu-rmsnorm`` edits can also be made "through the norm": edit the pre-norm code u from
`encode_prenorm` and map it back with `decode_prenorm` (``z' = z + decode_prenorm(u') -
decode_prenorm(u)``), which renormalises the edited code before decoding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.errors import ModelFileError, UsageError

TRAINABLE = ("topk", "batchtopk", "relu", "relu-rmsnorm")
ARCHITECTURES = (*TRAINABLE, "jumprelu")
# What each architecture is called in cfg.json (SAELens's names where SAELens has one).
SAVED_AS = {"topk": "topk", "batchtopk": "jumprelu", "jumprelu": "jumprelu", "relu": "standard",
            "relu-rmsnorm": "relu-rmsnorm"}
NP_CHUNK = 16384  # frames per block in the numpy helpers: bounded memory for long clips


class SAE(nn.Module):
    """One sparse autoencoder; `encode`/`decode` act on raw codec latents once loaded or folded."""

    threshold: torch.Tensor  # batchtopk, jumprelu
    rms_weight: nn.Parameter  # relu-rmsnorm

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        architecture: str = "topk",
        *,
        k: int | None = None,
        apply_b_dec_to_input: bool = True,
        rms_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ModelFileError(f"unknown SAE architecture '{architecture}'; known: {', '.join(ARCHITECTURES)}")
        if d_in < 1 or d_sae < 1:
            raise ModelFileError(f"SAE sizes must be positive (d_in={d_in}, d_sae={d_sae})")
        if architecture in ("topk", "batchtopk"):
            if k is None or not (1 <= int(k) <= d_sae):
                raise ModelFileError(f"{architecture} SAE needs 1 <= k <= d_sae ({d_sae}), got k={k}")
        self.d_in = int(d_in)
        self.d_sae = int(d_sae)
        self.architecture = architecture
        self.k = int(k) if k is not None else None
        self.apply_b_dec_to_input = bool(apply_b_dec_to_input)
        self.rms_eps = float(rms_eps)
        # Facts from the folder it was loaded from (codec id, max activations, ...): see io.SAEInfo.
        self.info: Any = None
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        if architecture in ("batchtopk", "jumprelu"):
            # Estimated (batchtopk) or loaded (jumprelu), never trained by gradient: a buffer.
            self.register_buffer("threshold", torch.zeros(d_sae))
        if architecture == "relu-rmsnorm":
            self.rms_weight = nn.Parameter(torch.ones(d_sae))

    # -- construction ------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Unit-norm random decoder rows, encoder = decoder transposed (tied init), zero biases."""
        w = torch.randn(self.d_sae, self.d_in, generator=generator)
        w /= w.norm(dim=1, keepdim=True).clamp_min(1e-8)
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.T)
        self.b_enc.zero_()
        self.b_dec.zero_()
        if self.architecture == "relu-rmsnorm":
            # With unit decoder rows and an RMS-1 code, a gain of sqrt(d_in / d_sae) starts the
            # reconstruction near the (normalised) input's scale.
            self.rms_weight.fill_((self.d_in / self.d_sae) ** 0.5)

    @property
    def saved_architecture(self) -> str:
        return SAVED_AS[self.architecture]

    def describe(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "d_in": self.d_in, "d_sae": self.d_sae, "k": self.k,
                "apply_b_dec_to_input": self.apply_b_dec_to_input}

    # -- inference ---------------------------------------------------------------------------------
    def hidden_pre(self, z: torch.Tensor) -> torch.Tensor:
        x = z - self.b_dec if self.apply_b_dec_to_input else z
        return x @ self.W_enc + self.b_enc

    def rms_normalize(self, u: torch.Tensor) -> torch.Tensor:
        """RMSNorm over features (relu-rmsnorm only): the post-norm code the decoder consumes."""
        return u * torch.rsqrt(u.pow(2).mean(dim=-1, keepdim=True) + self.rms_eps) * self.rms_weight

    def activate(self, h: torch.Tensor) -> torch.Tensor:
        arch = self.architecture
        if arch == "topk":
            assert self.k is not None
            vals, idx = topk_rows(h, self.k)
            return torch.zeros_like(h).scatter_(-1, idx, vals.relu())
        if arch in ("batchtopk", "jumprelu"):
            return h.relu() * (h > self.threshold.relu())
        if arch == "relu":
            return h.relu()
        return self.rms_normalize(h.relu())

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Features [..., d_sae] of latents [..., d_in]."""
        return self.activate(self.hidden_pre(z))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction [..., d_in] from features [..., d_sae] (linear: steering relies on it)."""
        return f @ self.W_dec + self.b_dec

    def encode_prenorm(self, z: torch.Tensor) -> torch.Tensor:
        """relu-rmsnorm: the code before RMSNorm (what the L1 acted on). Other architectures: `encode`."""
        if self.architecture == "relu-rmsnorm":
            return self.hidden_pre(z).relu()
        return self.encode(z)

    def decode_prenorm(self, u: torch.Tensor) -> torch.Tensor:
        """relu-rmsnorm: decode an (edited) pre-norm code, renormalising it first. Others: `decode`."""
        if self.architecture == "relu-rmsnorm":
            return self.decode(self.rms_normalize(u))
        return self.decode(u)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(z))

    # -- numpy convenience (the app and the CLI work in numpy) --------------------------------------
    def _np_apply(self, fn: Any, x: np.ndarray, width_in: int, name: str) -> np.ndarray:
        a = np.asarray(x)
        if a.ndim != 2 or a.shape[1] != width_in:
            raise ModelFileError(f"{name}: expected an array [T, {width_in}], got shape {tuple(a.shape)}")
        p = next(self.parameters())
        outs = []
        with torch.inference_mode():
            for s in range(0, max(1, a.shape[0]), NP_CHUNK):
                t = torch.from_numpy(np.ascontiguousarray(a[s : s + NP_CHUNK], dtype=np.float32))
                outs.append(fn(t.to(p.device)).float().cpu().numpy())
        return np.concatenate(outs, axis=0).astype(np.float32, copy=False)

    def encode_np(self, z: np.ndarray) -> np.ndarray:
        return self._np_apply(self.encode, z, self.d_in, "latents")

    def decode_np(self, f: np.ndarray) -> np.ndarray:
        return self._np_apply(self.decode, f, self.d_sae, "features")

    def encode_prenorm_np(self, z: np.ndarray) -> np.ndarray:
        return self._np_apply(self.encode_prenorm, z, self.d_in, "latents")

    def decode_prenorm_np(self, u: np.ndarray) -> np.ndarray:
        return self._np_apply(self.decode_prenorm, u, self.d_sae, "features")

    def reconstruct_np(self, z: np.ndarray) -> np.ndarray:
        return self._np_apply(self.forward, z, self.d_in, "latents")

    @property
    def W_dec_np(self) -> np.ndarray:
        """Decoder rows [d_sae, d_in] as float32 numpy (a copy)."""
        return self.W_dec.detach().float().cpu().numpy().copy()

    # -- training-time constraints -----------------------------------------------------------------
    @torch.no_grad()
    def project_grads_(self) -> None:
        """Remove the gradient components that would change unit-norm rows' lengths (they are
        renormalised after the step anyway; removing them first keeps Adam's moments about directions)."""
        g = self.W_dec.grad
        if g is not None:
            w = self.W_dec
            g -= (g * w).sum(dim=1, keepdim=True) * w
        if self.architecture == "relu-rmsnorm" and self.W_enc.grad is not None:
            g, w = self.W_enc.grad, self.W_enc
            g -= (g * w).sum(dim=0, keepdim=True) * w

    @torch.no_grad()
    def normalize_(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
        if self.architecture == "relu-rmsnorm":
            self.W_enc.div_(self.W_enc.norm(dim=0, keepdim=True).clamp_min(1e-8))

    # -- folding the training-time input scale -----------------------------------------------------
    @torch.no_grad()
    def folded(self, scale: float) -> SAE:
        """A copy that acts on raw latents z, for a model trained on ``scale * z``.

        Features of the copy are those of the trained model divided by `scale` (h' = h / scale: W_enc
        unchanged, b_enc, b_dec and threshold divided), so decoder rows stay unit-norm and a feature's
        value is its amplitude along that unit direction in raw latent units. TopK selections,
        JumpReLU gates and the RMSNorm (eps / scale², gain / scale) come out identical.
        """
        s = float(scale)
        out = self._copy(rms_eps=self.rms_eps / (s * s))
        out.b_enc.div_(s)
        out.b_dec.div_(s)
        if self.architecture in ("batchtopk", "jumprelu"):
            out.threshold.div_(s)
        if self.architecture == "relu-rmsnorm":
            out.rms_weight.div_(s)
        return out.to(self.W_enc.device)

    def channel_weighted(self, weights: np.ndarray) -> SAE:
        """A copy that acts on raw latents z, for a model trained on ``weights * z`` (per channel).

        The features are unchanged (the same TopK selections, gates and values): W_enc's input rows are
        multiplied by the weights, W_dec's output columns and b_dec divided by them, so decoder rows are
        no longer exactly unit-norm. Not for relu-rmsnorm (its RMS norm of the weighted input has no exact
        fold)."""
        if self.architecture == "relu-rmsnorm":
            raise UsageError("channel weights cannot be folded into a relu-rmsnorm SAE")
        w = torch.as_tensor(np.asarray(weights, np.float32), device=self.W_enc.device)
        if w.shape != (self.d_in,) or not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
            raise UsageError(f"channel weights must be {self.d_in} positive numbers")
        out = self._copy(rms_eps=self.rms_eps)
        with torch.no_grad():
            out.W_enc.mul_(w[:, None])
            out.W_dec.div_(w[None, :])
            out.b_dec.div_(w)
        return out.to(self.W_enc.device)

    def _copy(self, rms_eps: float) -> SAE:
        """Same architecture and weights (cloned, on the CPU until moved), and the same `info`."""
        out = SAE(self.d_in, self.d_sae, self.architecture, k=self.k,
                  apply_b_dec_to_input=self.apply_b_dec_to_input, rms_eps=rms_eps)
        out.load_state_dict({k: v.detach().clone() for k, v in self.state_dict().items()})
        out.info = self.info
        return out

    # -- training forward passes -------------------------------------------------------------------
    def training_loss(
        self,
        x: torch.Tensor,
        *,
        l1: float = 0.0,
        dead_mask: torch.Tensor | None = None,
        aux_coef: float = 1.0 / 32,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Loss on a (normalised) batch x [B, d_in].

        Returns (loss, parts, fired, x_hat): `parts` holds detached scalars for logging; `fired` [d_sae]
        counts the frames on which each feature was non-zero in this batch.
        """
        arch = self.architecture
        if arch == "topk":
            return self._topk_training_loss(x, dead_mask, aux_coef)
        h = self.hidden_pre(x)
        parts: dict[str, torch.Tensor] = {}
        b = x.shape[0]
        if arch == "batchtopk":
            assert self.k is not None
            a = h.relu().flatten()
            n = max(1, min(a.numel(), int(round(self.k * b))))
            vals, flat_idx = a.topk(n, sorted=False)
            rows = torch.div(flat_idx, self.d_sae, rounding_mode="floor")
            cols = flat_idx - rows * self.d_sae
            order = rows.argsort()
            rows, cols, vals = rows[order], cols[order], vals[order]
            counts = torch.bincount(rows, minlength=b)
            offsets = torch.cumsum(counts, 0) - counts
            x_hat = F.embedding_bag(cols, self.W_dec, offsets, per_sample_weights=vals, mode="sum") + self.b_dec
            on = vals > 0
            fired = torch.bincount(cols[on], minlength=self.d_sae)
            l0 = on.sum().float() / b
            if self.training and bool(on.any()):
                with torch.no_grad():
                    smallest = vals[on].min()
                    t = self.threshold
                    # First batch sets it; then an EMA (as SAELens does), one scalar for all features.
                    new = smallest if float(t[0]) == 0.0 else 0.99 * t[0] + 0.01 * smallest
                    t.fill_(float(new))
        else:
            u = h.relu()
            f = self.rms_normalize(u) if arch == "relu-rmsnorm" else u
            x_hat = f @ self.W_dec + self.b_dec
            fired = (u > 0).sum(dim=0)  # one pass over the codes: bool reductions are slow on CPU
            l0 = fired.sum().float() / b
            if arch == "relu":
                sparsity = (u @ self.W_dec.norm(dim=1)).mean()
            else:
                sparsity = u.sum(dim=-1).mean()
            parts["l1"] = sparsity.detach()
        err = x - x_hat
        mse = err.pow(2).sum(dim=-1).mean()
        loss = mse
        if arch in ("relu", "relu-rmsnorm"):
            loss = loss + l1 * sparsity
        elif dead_mask is not None and aux_coef > 0:
            num_dead = int(dead_mask.sum())
            if num_dead > 0:
                k_aux = min(max(1, self.d_in // 2), num_dead)
                scale = min(num_dead / max(1, self.d_in // 2), 1.0)
                # Top-k over the dead columns only (usually few): cheaper than a masked top-k of all.
                dead_idx = dead_mask.nonzero().squeeze(1)
                av, ai = h.index_select(1, dead_idx).topk(k_aux, dim=-1, sorted=False)
                e_hat = F.embedding_bag(dead_idx[ai], self.W_dec, per_sample_weights=av, mode="sum")
                aux = (e_hat - err.detach()).pow(2).sum(dim=-1).mean()
                parts["aux"] = aux.detach()
                loss = loss + aux_coef * scale * aux
        parts["mse"] = mse.detach()
        parts["l0"] = l0.detach()
        parts["loss"] = loss.detach()
        var = (x - x.mean(dim=0, keepdim=True)).pow(2).sum(dim=-1).mean()
        parts["fvu"] = (mse / var.clamp_min(1e-12)).detach()
        return loss, parts, fired, x_hat


    def _topk_training_loss(
        self, x: torch.Tensor, dead_mask: torch.Tensor | None, aux_coef: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """TopK's MSE + AuxK through `_TopKLoss` (same loss, sparse hand-written backward)."""
        assert self.k is not None
        dead_idx = None
        if dead_mask is not None and aux_coef > 0:
            dead_idx = dead_mask.nonzero().squeeze(1)
            if dead_idx.numel() == 0:
                dead_idx = None
        stats: dict[str, Any] = {}
        loss = _TopKLoss.apply(x, self.W_enc, self.b_enc, self.W_dec, self.b_dec, self.k, dead_idx,
                               float(aux_coef), self.apply_b_dec_to_input, stats)
        parts = {"mse": stats["mse"], "l0": stats["l0"], "loss": loss.detach()}
        if "aux" in stats:
            parts["aux"] = stats["aux"]
        xd = x.detach()
        var = (xd - xd.mean(dim=0, keepdim=True)).pow(2).sum(dim=-1).mean()
        parts["fvu"] = stats["mse"] / var.clamp_min(1e-12)
        return loss, parts, stats["fired"], stats["x_hat"]


def topk_rows(h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest entries of each row of h [B, F] (values, indices; in no particular order): the
    selection of ``h.topk(k, dim=-1, sorted=False)``, about twice as fast on CPU when F >> k.

    Why it is exact: split the F columns into G strided groups of g (group c holds columns c, c + G,
    c + 2G, ...). Each of the row's k largest entries lies in a group whose maximum is at least that
    entry, and at most k groups can have such a maximum, so the k largest entries all lie in the k
    groups with the largest maxima. Selecting k of the G group maxima, then k of those groups' k·g
    entries, replaces selecting k of all F entries; a CPU selection costs about linearly in the row
    length, and G + k·g is smallest near g = sqrt(F / k). On one thread the two selections are numpy's
    ``argpartition`` (introselect: less work per element than torch's CPU top-k); on several, torch's
    top-k, which splits rows over the threads.
    """
    b, f = h.shape if h.ndim == 2 else (0, 0)
    g = 1 << max(0, round(math.log2(max(1.0, f / max(1, k)) ** 0.5)))
    if h.ndim != 2 or h.device.type != "cpu" or g < 2 or f % g or f // g <= k:
        v, i = h.topk(k, dim=-1, sorted=False)
        return v, i
    n_groups = f // g
    maxima = h.detach().view(b, g, n_groups).amax(dim=1)
    use_np = torch.get_num_threads() == 1 and h.dtype in (torch.float32, torch.float64)
    groups = _select(maxima, k, use_np)
    cand = (groups.unsqueeze(-1) + torch.arange(0, f, n_groups)).view(b, k * g)
    cv = h.gather(1, cand)
    j = _select(cv.detach(), k, use_np)
    return cv.gather(1, j), cand.gather(1, j)


def _select(a: torch.Tensor, k: int, use_np: bool) -> torch.Tensor:
    """Column indices [B, k] of the k largest entries of each row of a (no grad), in no order."""
    if use_np:
        n = a.shape[1]
        return torch.from_numpy(np.argpartition(a.numpy(), n - k, axis=1)[:, n - k :]).to(torch.int64)
    return a.topk(k, dim=-1, sorted=False).indices


class _TopKLoss(torch.autograd.Function):
    """TopK SAE training loss, MSE + AuxK, with a hand-written sparse backward.

    Forward (the loss `SAE.training_loss` has always defined for topk):

        xc = x - b_dec;  h = xc @ W_enc + b_enc;  (v, i) = topk(h, k);  a = relu(v)
        x_hat = sum_j a_j W_dec[i_j] + b_dec;  err = x - x_hat;  mse = mean_b ||err||^2
        AuxK: av = the k_aux largest h among the dead columns (zero elsewhere);  e_hat = av @ W_dec
              aux = mean_b ||e_hat - err.detach()||^2;  loss = mse + aux_coef * scale * aux

    Autograd would push a dense [B, d_sae] gradient through h (top-k's backward scatters into zeros)
    into two dense [B, d_sae] x [d_sae, d_in] products, and embedding_bag's CPU backward sorts. But
    dL/dh of the main term has only B·k non-zero entries, so W_enc's and W_dec's gradients are
    sparse x dense products over them, and the one dense product left is dL/dx_hat @ W_dec^T (the
    gradient of the selected activations). AuxK lives on the dead columns only (usually few), so it is
    done densely on [B, num_dead]. Same maths as autograd of the forward above (the tests compare the
    two), different summation order.

    `stats` (a dict) receives detached figures for logging: mse, aux, l0, fired [d_sae], x_hat.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor,
        b_dec: torch.Tensor, k: int, dead_idx: torch.Tensor | None, aux_coef: float, apply_b_dec: bool,
        stats: dict[str, Any],
    ) -> torch.Tensor:
        b, d_in = x.shape
        d_sae = W_enc.shape[1]
        xc = x - b_dec if apply_b_dec else x
        h = (xc @ W_enc).add_(b_enc)  # cheaper than addmm's broadcast copy of the bias on CPU
        v, idx = topk_rows(h, k)
        act = v.relu()
        x_hat = F.embedding_bag(idx, W_dec, per_sample_weights=act, mode="sum").add_(b_dec)
        err = x - x_hat
        mse = err.pow(2).sum(dim=-1).mean()
        loss = mse
        aux_w = 0.0
        saved = [xc, W_enc, W_dec, idx]
        if dead_idx is not None:
            num_dead = int(dead_idx.numel())
            half = max(1, d_in // 2)
            k_aux = min(half, num_dead)
            aux_w = aux_coef * min(num_dead / half, 1.0)
            # The dead columns are usually few: AuxK works on a dense [B, num_dead] code.
            h_dead = h.index_select(1, dead_idx)
            if k_aux < num_dead:
                av, ai = topk_rows(h_dead, k_aux)
                a_dead = torch.zeros_like(h_dead).scatter_(1, ai, av)
                sel = torch.zeros_like(h_dead, dtype=torch.bool).scatter_(1, ai, True)
            else:  # every dead latent is among the top k_aux: no selection needed
                a_dead = h_dead
                sel = torch.ones(0, dtype=torch.bool)
            w_dead = W_dec.index_select(0, dead_idx)
            aerr = (a_dead @ w_dead).sub_(err)
            aux = aerr.pow(2).sum(dim=-1).mean()
            loss = loss + aux_w * aux
            stats["aux"] = aux
            saved += [dead_idx, a_dead, sel, aerr]
        on = act > 0
        stats["mse"] = mse.detach()  # a separate object: `apply` attaches the graph to the returned loss
        stats["l0"] = on.sum(dim=-1).float().mean()
        stats["fired"] = torch.zeros(d_sae, dtype=torch.int64, device=x.device).index_add_(
            0, idx.reshape(-1), on.reshape(-1).to(torch.int64))
        stats["x_hat"] = x_hat
        ctx.aux_w = aux_w
        ctx.apply_b_dec = apply_b_dec
        ctx.save_for_backward(act, on, err, *saved)
        return loss

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        act, on, err, xc, W_enc, W_dec, idx, *aux_saved = ctx.saved_tensors
        b, d_in = xc.shape
        d_sae = W_enc.shape[1]
        k = idx.shape[1]
        dev = xc.device
        g_xhat = err * (g * (-2.0 / b))  # dL/dx_hat [B, d_in]
        # Main term: B·k entries of dL/dh, at the selected columns.
        g_h = (g_xhat @ W_dec.T).gather(1, idx) * on
        rows = torch.arange(b, device=dev).repeat_interleave(k)
        flat_cols, flat_g = idx.reshape(-1), g_h.reshape(-1)
        g_W_dec = _sparse_t_mm(flat_cols, rows, act.reshape(-1), d_sae, g_xhat)
        g_W_enc_t = _sparse_t_mm(flat_cols, rows, flat_g, d_sae, xc)  # [d_sae, d_in]
        g_b_enc = torch.zeros(d_sae, dtype=g_h.dtype, device=dev).index_add_(0, flat_cols, flat_g)
        g_xc = F.embedding_bag(idx, W_enc.T.contiguous(), per_sample_weights=g_h, mode="sum")
        if aux_saved:  # AuxK term, dense over the dead columns
            dead_idx, a_dead, sel, aerr = aux_saved
            g_ehat = aerr * (g * (2.0 * ctx.aux_w / b))  # dL/de_hat
            w_dead = W_dec.index_select(0, dead_idx)
            g_dead = g_ehat @ w_dead.T  # [B, num_dead]
            if sel.numel():
                g_dead = g_dead * sel
            g_W_dec.index_add_(0, dead_idx, a_dead.T @ g_ehat)
            g_W_enc_t.index_add_(0, dead_idx, g_dead.T @ xc)
            g_b_enc.index_add_(0, dead_idx, g_dead.sum(dim=0))
            g_xc += g_dead @ W_enc.index_select(1, dead_idx).T
        g_b_dec = g_xhat.sum(dim=0)
        if ctx.apply_b_dec:
            g_b_dec = g_b_dec - g_xc.sum(dim=0)
        g_x = (g_xc - g_xhat) if ctx.needs_input_grad[0] else None
        return g_x, g_W_enc_t.T.contiguous(), g_b_enc, g_W_dec, g_b_dec, None, None, None, None, None


def _sparse_t_mm(cols: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor, n: int, dense: torch.Tensor) -> torch.Tensor:
    """S^T @ dense for the sparse S [dense.shape[0], n] holding vals at (rows, cols): [n, dense.shape[1]]."""
    s = torch.sparse_coo_tensor(torch.stack([cols, rows]), vals, (n, dense.shape[0]), check_invariants=False)
    return torch.sparse.mm(s, dense)


def geometric_median(x: torch.Tensor, iters: int = 64, tol: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's algorithm: the point minimising the sum of distances, a robust centre for b_dec
    (the mean is pulled by loud outliers; the median of each dimension ignores their joint shape)."""
    y = x.mean(dim=0)
    for _ in range(iters):
        d = (x - y).norm(dim=1).clamp_min(1e-8)
        w = 1.0 / d
        y_new = (w[:, None] * x).sum(dim=0) / w.sum()
        if float((y_new - y).norm()) <= tol * (1.0 + float(y.norm())):
            return y_new
        y = y_new
    return y
