"""TopK's fast paths: the two-stage selection picks exactly what torch.topk picks, and the hand-written
sparse backward of the TopK loss (MSE + AuxK) gives autograd's gradients of the same loss."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from workbench.core.sae.model import SAE, topk_rows


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """One thread takes the numpy selection, several take torch's: both must be exact."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("shape,k", [((300, 512), 16), ((257, 512), 1), ((64, 1024), 32), ((50, 96), 3),
                                     ((40, 512), 200), ((33, 100), 7), ((10, 16), 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_topk_rows_selects_exactly_what_topk_selects(threads: int, shape: tuple[int, int], k: int,
                                                     dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(shape[0] * 7 + k)
    h = torch.randn(shape, generator=gen, dtype=dtype)
    h[::5] = h[::5].round(decimals=1)  # ties: equal values may trade places, the value sets may not
    v, i = topk_rows(h, k)
    ref_v, ref_i = h.topk(k, dim=-1)
    assert v.shape == i.shape == (shape[0], k) and i.dtype == torch.int64
    torch.testing.assert_close(v.sort(dim=1).values, ref_v.sort(dim=1).values, rtol=0, atol=0)
    torch.testing.assert_close(h.gather(1, i), v, rtol=0, atol=0)
    assert all(len(set(row)) == k for row in i.tolist())  # no column twice
    untied = ~(h[:, None, :] == h[:, :, None]).sum(-1).gt(1).any(-1)
    assert torch.equal(i[untied].sort(dim=1).values, ref_i[untied].sort(dim=1).values)


def test_topk_rows_keeps_gradients_to_the_selected_entries() -> None:
    h = torch.randn(20, 256, requires_grad=True)
    v, i = topk_rows(h, 8)
    v.sum().backward()
    assert h.grad is not None
    expect = torch.zeros(20, 256).scatter_(1, i, 1.0)
    assert torch.equal(h.grad, expect)


def reference_loss(sae: SAE, x: torch.Tensor, dead_mask: torch.Tensor | None, aux_coef: float) -> torch.Tensor:
    """The TopK loss written densely, for autograd: MSE + AuxK on the top d_in/2 dead latents."""
    assert sae.k is not None
    h = sae.hidden_pre(x)
    vals, idx = h.topk(sae.k, dim=-1)
    x_hat = torch.zeros_like(h).scatter(-1, idx, vals.relu()) @ sae.W_dec + sae.b_dec
    err = x - x_hat
    loss = err.pow(2).sum(-1).mean()
    if dead_mask is not None and bool(dead_mask.any()):
        n_dead = int(dead_mask.sum())
        half = max(1, sae.d_in // 2)
        av, ai = torch.where(dead_mask[None], h, -torch.inf).topk(min(half, n_dead), dim=-1)
        e_hat = torch.zeros_like(h).scatter(-1, ai, av) @ sae.W_dec
        loss = loss + aux_coef * min(n_dead / half, 1.0) * (e_hat - err.detach()).pow(2).sum(-1).mean()
    return loss


@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("n_dead", [0, 3, 40, 256])
def test_sparse_backward_matches_autograd_of_the_dense_loss(threads: int, apply_b_dec: bool, n_dead: int) -> None:
    torch.manual_seed(n_dead + 10 * apply_b_dec)
    sae = SAE(24, 256, "topk", k=8, apply_b_dec_to_input=apply_b_dec).double()
    sae.init_weights()
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_(0.0, 0.2)
    x = torch.randn(300, 24, dtype=torch.float64, requires_grad=True)
    dead = torch.zeros(256, dtype=torch.bool)
    dead[torch.randperm(256)[:n_dead]] = True
    mask = dead if n_dead else None
    loss, parts, fired, x_hat = sae.training_loss(x, dead_mask=mask, aux_coef=0.25)
    ref = reference_loss(sae, x, mask, 0.25)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    params = [x, *sae.parameters()]
    got = torch.autograd.grad(loss, params)
    want = torch.autograd.grad(ref, params)
    for name, a, b in zip(["x"] + [n for n, _ in sae.named_parameters()], got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=name)
    assert ("aux" in parts) == (n_dead > 0)
    assert not any(p.requires_grad for p in parts.values())
    assert int(fired.sum()) == round(float(parts["l0"]) * 300)
    torch.testing.assert_close(x_hat, sae(x.detach()), rtol=1e-10, atol=1e-10)
