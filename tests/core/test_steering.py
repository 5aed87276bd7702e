"""Edits: parsing, identity, ranges with fades, relu-rmsnorm through its norm, and the audio effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.audio import AudioClip
from workbench.core.codecs.default import DefaultCodec
from workbench.core.errors import UsageError
from workbench.core.sae.model import SAE
from workbench.core.steering import Edit, SteeringContext, apply_edits, parse_edit, range_weights


def random_sae(d_in: int, d_sae: int = 64, arch: str = "relu", seed: int = 0) -> SAE:
    torch.manual_seed(seed)
    sae = SAE(d_in, d_sae, arch, k=8 if arch in ("topk", "batchtopk") else None)
    with torch.no_grad():
        sae.W_enc.normal_(0, 1 / np.sqrt(d_in))
        sae.W_dec.copy_(sae.W_enc.T / sae.W_enc.T.norm(dim=1, keepdim=True))
        sae.b_enc.fill_(-0.05)
    return sae.eval()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("12:scale=0", Edit(12, "scale", 0.0)),
        ("3:add=-0.5", Edit(3, "add", -0.5)),
        ("7:set=1e-1", Edit(7, "set", 0.1)),
        ("7:set=2@1.5-3", Edit(7, "set", 2.0, 1.5, 3.0)),
        (" 7 : add = .5 @ 0.25 - ", Edit(7, "add", 0.5, 0.25, None)),
        ("0:scale=2@-4", Edit(0, "scale", 2.0, None, 4.0)),
    ],
)
def test_parse_edit(spec: str, expected: Edit) -> None:
    assert parse_edit(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "12", "x:scale=1", "1:mul=2", "1:scale=", "1:scale=nan", "1:scale=inf", "1:add=1@3-2",
             "-1:scale=0", "1:scale=1@", "1:scale=1@-", "1:scale=1e999", "1" * 300]
)
def test_parse_edit_rejects_with_one_line(spec: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_edit(spec)
    assert "\n" not in str(e.value)


def test_no_edits_is_identity_through_the_codec(tiny_codec: DefaultCodec) -> None:
    t = np.arange(24000) / 24000
    z = tiny_codec.encode(AudioClip((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24000))
    ctx = SteeringContext.from_sae(random_sae(z.shape[1]), tiny_codec.frame_rate)
    z2 = apply_edits(z, [], ctx)
    assert np.array_equal(z2, z)
    a, b = tiny_codec.decode(z).samples, tiny_codec.decode(z2).samples
    assert np.max(np.abs(a - b)) <= 1e-6
    # A no-op edit (scale=1) also keeps z within float error.
    z3 = apply_edits(z, [Edit(3, "scale", 1.0)], ctx)
    assert np.max(np.abs(z3 - z)) < 1e-6


def test_scale_zero_removes_exactly_that_feature_in_latent_space() -> None:
    rng = np.random.default_rng(0)
    sae = random_sae(16, 64)
    z = rng.standard_normal((200, 16)).astype(np.float32)
    ctx = SteeringContext.from_sae(sae, 75.0)
    f = sae.encode_np(z)
    j = int(np.argmax((f > 0).mean(0)))
    z2 = apply_edits(z, [Edit(j, "scale", 0.0)], ctx)
    # z' differs from z by exactly -f_j * W_dec[j].
    np.testing.assert_allclose(z2 - z, -f[:, j : j + 1] * sae.W_dec_np[j][None], atol=1e-5)


def test_add_and_set_are_in_units_of_max_activation() -> None:
    sae = random_sae(8, 16)
    ctx = SteeringContext.from_sae(sae, 75.0)
    ctx.max_activation[:] = 2.0
    z = np.zeros((10, 8), np.float32)
    f = sae.encode_np(z)
    z_add = apply_edits(z, [Edit(5, "add", 0.5)], ctx)
    np.testing.assert_allclose(z_add - z, np.tile(1.0 * sae.W_dec_np[5], (10, 1)), atol=1e-5)
    z_set = apply_edits(z, [Edit(5, "set", 1.0)], ctx)
    np.testing.assert_allclose(z_set - z, (2.0 - f[:, 5:6]) * sae.W_dec_np[5][None], atol=1e-5)


def test_range_edit_touches_only_its_range_plus_fades() -> None:
    fr = 75.0
    e = Edit(0, "set", 1.0, 1.0, 2.0, fade=0.04)
    w = range_weights(e, 300, fr)
    t = (np.arange(300) + 0.5) / fr
    assert np.all(w[t < 1.0 - 0.04] == 0) and np.all(w[t > 2.0 + 0.04] == 0)
    assert np.all(w[(t >= 1.0) & (t <= 2.0)] == 1)
    # Fades: no jump larger than one fade step between neighbouring frames.
    assert np.max(np.abs(np.diff(w))) <= 1.0 / (0.04 * fr) + 1e-6


def test_range_edit_causes_no_click_in_audio(tiny_codec: DefaultCodec) -> None:
    t = np.arange(3 * 24000) / 24000
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    z = tiny_codec.encode(AudioClip(x, 24000))
    sae = random_sae(z.shape[1], 64)
    ctx = SteeringContext.from_sae(sae, tiny_codec.frame_rate)
    f = sae.encode_np(z)
    j = int(np.argmax(f.mean(0)))
    z2 = apply_edits(z, [Edit(j, "add", 2.0, 1.0, 2.0)], ctx)
    diff = np.abs(z2 - z).max(axis=1)
    frames = np.arange(len(z))
    outside = (frames < int(0.95 * 75)) | (frames > int(2.05 * 75))
    assert diff[outside].max() == 0.0 and diff.max() > 0
    y = tiny_codec.decode(z2).samples[:, 0]
    y0 = tiny_codec.decode(z).samples[:, 0]
    # Discontinuity bound: the largest sample-to-sample step of the steered audio stays within 2x the
    # largest step of the unedited decode (a click would be a step of the order of the signal).
    assert np.abs(np.diff(y)).max() <= 2.0 * np.abs(np.diff(y0)).max() + 1e-3


def test_relu_rmsnorm_edit_goes_through_the_norm() -> None:
    rng = np.random.default_rng(1)
    sae = random_sae(16, 32, "relu-rmsnorm")
    ctx = SteeringContext.from_sae(sae, 75.0)
    assert ctx.prenorm
    z = rng.standard_normal((50, 16)).astype(np.float32)
    u = sae.encode_prenorm_np(z)
    j = int(np.argmax((u > 0).mean(0)))
    z2 = apply_edits(z, [Edit(j, "scale", 0.0)], ctx)
    u2 = u.copy()
    u2[:, j] = 0
    expected = z + sae.decode_prenorm_np(u2) - sae.decode_prenorm_np(u)
    np.testing.assert_allclose(z2, expected, atol=1e-5)
    # Not the naive post-norm edit: renormalisation changes the other features' contributions too.
    naive = z - sae.encode_np(z)[:, j : j + 1] * sae.W_dec_np[j][None]
    assert np.abs(z2 - naive).max() > 1e-4


def test_unknown_feature_is_a_one_line_error() -> None:
    sae = random_sae(8, 16)
    ctx = SteeringContext.from_sae(sae, 75.0)
    with pytest.raises(UsageError):
        apply_edits(np.zeros((4, 8), np.float32), [Edit(99, "scale", 0.0)], ctx)
