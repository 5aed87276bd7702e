"""Trainer: resume after a stop continues exactly like an uninterrupted run; NaN stops with one line and
keeps the last good checkpoint; pause/stop from another thread; device errors; checkpoint folders."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SparseData

from workbench.core.errors import UsageError
from workbench.core.sae.trainer import TrainConfig, TrainControl, Trainer, TrainingDivergedError


def cfg_for(arch: str, **kw: object) -> TrainConfig:
    base: dict = dict(architecture=arch, d_in=32, d_sae=64, steps=40, batch_size=128, lr=3e-3,
                      dead_window=300, log_every=5, checkpoint_every=10, warmup_steps=5)
    if arch in ("topk", "batchtopk"):
        base["k"] = 4
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "relu-rmsnorm"])
def test_resume_after_stop_matches_an_uninterrupted_run(tmp_path: Path, sparse_data: SparseData, arch: str) -> None:
    batches = sparse_data.batches(40, 128, seed=5)
    full = Trainer(cfg_for(arch), tmp_path / "a")
    full.run(batches)

    control = TrainControl()

    def stop_at_20(m: dict) -> None:
        if m["step"] >= 20:
            control.stop()

    first = Trainer(cfg_for(arch), tmp_path / "b", control=control, on_metrics=stop_at_20)
    r1 = first.run(batches)
    assert r1.stopped and r1.step == 20
    assert json.loads((tmp_path / "b" / "latest.json").read_text())["step"] == 20

    second = Trainer(cfg_for(arch), tmp_path / "b")
    assert second.resume() and second.step == 20 and second.frames_seen == 20 * 128
    r2 = second.run(batches[second.step :])
    assert r2.step == 40 and not r2.stopped
    for (name, a), b in zip(full.sae.state_dict().items(), second.sae.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    sa, sb = full.opt.state_dict()["state"], second.opt.state_dict()["state"]
    for i in sa:
        torch.testing.assert_close(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"], rtol=1e-5, atol=1e-9)
        assert float(sa[i]["step"]) == float(sb[i]["step"]) == 40
    assert full.scale == second.scale
    assert [h["step"] for h in second.history] == [h["step"] for h in full.history]


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path: Path, sparse_data: SparseData) -> None:
    batches = sparse_data.batches(40, 128)
    batches[14] = batches[14].copy()
    batches[14][3, 5] = np.nan
    tr = Trainer(cfg_for("topk"), tmp_path / "s")
    with pytest.raises(TrainingDivergedError) as e:
        tr.run(batches)
    msg = str(e.value)
    assert "\n" not in msg and "step 15" in msg and "step 10" in msg
    assert json.loads((tmp_path / "s" / "latest.json").read_text())["step"] == 10
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["ckpt-000000010", "latest.json"]
    again = Trainer(cfg_for("topk"), tmp_path / "s")
    assert again.resume() and again.step == 10
    assert all(torch.isfinite(v).all() for v in again.sae.state_dict().values())


def test_pause_resume_and_stop_from_another_thread(sparse_data: SparseData) -> None:
    batches = sparse_data.batches(30, 64)
    control = TrainControl()
    control.pause()
    tr = Trainer(cfg_for("relu", steps=30, batch_size=64), control=control)
    out: dict = {}
    th = threading.Thread(target=lambda: out.setdefault("r", tr.run(batches)))
    th.start()
    time.sleep(0.3)
    assert tr.step == 0 and control.paused
    control.resume()
    th.join(timeout=60)
    assert not th.is_alive() and out["r"].step == 30 and not out["r"].stopped

    control2 = TrainControl()
    control2.pause()
    tr2 = Trainer(cfg_for("relu", steps=30, batch_size=64), control=control2)
    th2 = threading.Thread(target=lambda: out.setdefault("r2", tr2.run(batches)))
    th2.start()
    time.sleep(0.2)
    control2.stop()  # a stop while paused ends the run
    th2.join(timeout=30)
    assert not th2.is_alive() and out["r2"].stopped and out["r2"].step == 0


def test_running_out_of_batches_counts_as_stopped(sparse_data: SparseData) -> None:
    tr = Trainer(cfg_for("topk"))
    r = tr.run(sparse_data.batches(7, 128))
    assert r.stopped and r.step == 7


@pytest.mark.parametrize("device", ["cuda", "mps", "tpu"])
def test_unavailable_devices_are_one_line_usage_errors(device: str) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    with pytest.raises(UsageError) as e:
        Trainer(cfg_for("topk", device=device))
    assert "\n" not in str(e.value) and device in str(e.value)


def test_resume_refuses_a_checkpoint_of_another_shape(tmp_path: Path, sparse_data: SparseData) -> None:
    Trainer(cfg_for("topk", steps=10), tmp_path / "s").run(sparse_data.batches(10, 128))
    other = Trainer(cfg_for("topk", d_sae=96), tmp_path / "s")
    with pytest.raises(UsageError, match="d_sae"):
        other.resume()
    assert not Trainer(cfg_for("topk"), tmp_path / "empty").resume()


def test_leftover_temp_checkpoint_does_not_break_resume(tmp_path: Path, sparse_data: SparseData) -> None:
    Trainer(cfg_for("topk", steps=10), tmp_path / "s").run(sparse_data.batches(10, 128))
    (tmp_path / "s" / ".ckpt-000000020.tmp").mkdir()  # as left by a kill mid-write
    tr = Trainer(cfg_for("topk", steps=20), tmp_path / "s")
    assert tr.resume() and tr.step == 10
    tr.run(sparse_data.batches(20, 128)[10:])
    assert json.loads((tmp_path / "s" / "latest.json").read_text())["step"] == 20


def test_metrics_callback_reports_training_figures(sparse_data: SparseData) -> None:
    seen: list[dict] = []
    val = sparse_data.sample(2048, np.random.default_rng(3))
    tr = Trainer(cfg_for("topk", steps=20), on_metrics=seen.append, val_data=val)
    tr.run(sparse_data.batches(20, 128))
    assert [m["step"] for m in seen] == [5, 10, 15, 20]
    last = seen[-1]
    for key in ("loss", "mse", "fvu", "l0", "dead_fraction", "lr", "steps_per_s", "frames_per_s", "density",
                "val_fvu", "val_l0"):
        assert key in last, key
    assert sum(last["density"]["counts"]) + last["density"]["never"] == 64
    assert 0 < last["l0"] <= 4


def _with_quiet_channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sparse data plus a 33rd channel: a loudness-like scalar of small variance (0.3 x a frame's
    own log-level), independent of which atoms fire, which a sparse SAE can cheaply ignore."""
    level = rng.normal(size=(len(x), 1)).astype(np.float32)
    return np.concatenate([x, 0.3 * level], axis=1)


def test_loudness_weight_keeps_the_loudness_channel_and_exports_to_raw_latents(sparse_data: SparseData) -> None:
    rng = np.random.default_rng(3)
    batches = [_with_quiet_channel(b, rng) for b in sparse_data.batches(300, 256, seed=4)]
    val = _with_quiet_channel(sparse_data.sample(4096, np.random.default_rng(9)), np.random.default_rng(10))
    errs = {}
    for w in (1.0, 8.0):
        cfg = cfg_for("topk", d_in=33, steps=300, batch_size=256, loudness_channel=32, loudness_weight=w,
                      checkpoint_every=10**6)
        tr = Trainer(cfg)
        tr.run(batches)
        sae = tr.export_sae()
        # The export acts on raw latents: the same features as the trained model on weighted, scaled input.
        x = torch.from_numpy(val[:512])
        wv = torch.ones(33)
        wv[32] = w
        assert tr.scale is not None
        torch.testing.assert_close(sae.encode(x), tr.sae.encode(x * wv * tr.scale) / tr.scale, rtol=1e-4, atol=1e-5)
        rec = sae.decode_np(sae.encode_np(val))
        errs[w] = float(np.median(np.abs(rec[:, 32] - val[:, 32])))
    # Unweighted, the quiet channel is mostly left to b_dec; weighted 8x it is reconstructed.
    assert errs[8.0] < 0.5 * errs[1.0], errs


def test_loudness_weight_is_checked() -> None:
    with pytest.raises(UsageError, match="loudness channel"):
        cfg_for("topk", loudness_weight=4.0)
    with pytest.raises(UsageError, match="loudness-weight"):
        cfg_for("topk", loudness_channel=3, loudness_weight=0.0)
    with pytest.raises(UsageError, match="outside"):
        cfg_for("topk", loudness_channel=32, loudness_weight=2.0)
    with pytest.raises(UsageError, match="relu-rmsnorm"):
        cfg_for("relu-rmsnorm", loudness_channel=3, loudness_weight=2.0)
    assert cfg_for("topk", loudness_channel=3).channel_weights() is None
