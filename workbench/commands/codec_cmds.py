"""`workbench codecs`, `encode`, `decode`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError, WorkbenchError


def add_codec_options(p: argparse.ArgumentParser, default: str | None = "default") -> None:
    p.add_argument("--codec", default=default, help="codec id (default, encodec-24khz, encodec-48khz)")
    p.add_argument(
        "--latent",
        default=None,
        help="latent kind: continuous (encoder output) or quantized[:KBPS] (sum of RVQ codebook vectors)",
    )
    p.add_argument("--weights", default=None, help="EnCodec weights: a folder or a state-dict file")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")


def add_limit_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-limit", action="store_true",
                   help="write the raw decode, without the output limiter (by default peaks are held at "
                        "-1 dBFS: a strong edit can make the decode tens of dB too loud)")


def export_limiter(args: argparse.Namespace, codec: Any) -> Any:
    """The limiter an export goes through (`workbench.core.limiter`), or None with ``--no-limit``."""
    if getattr(args, "no_limit", False):
        return None
    from workbench.core.limiter import PeakLimiter

    return PeakLimiter(codec.sample_rate, codec.channels)


def report_limiter(limiter: Any) -> None:
    """One line on stderr when the limiter changed the export noticeably (more than ~1 dB, or NaN)."""
    if limiter is None:
        return
    from workbench.core.limiter import summary

    said = summary(limiter)
    if said:
        print(f"limiter: {said} (--no-limit writes the raw decode)", file=sys.stderr)


def codec_from_args(args: argparse.Namespace, codec_id: str | None = None) -> Any:
    from workbench.core.codecs import get_codec

    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(int(args.threads))
    return get_codec(codec_id or args.codec, latent=args.latent, weights=args.weights)


def register(sub: Any) -> None:
    p = sub.add_parser("codecs", help="list codecs: rates, latent dims, whether weights are present")
    p.add_argument("--weights", default=None, help="also look for EnCodec weights here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_codecs)

    p = sub.add_parser("encode", help="audio -> latents [T, D] float32 (.npy)")
    p.add_argument("audio")
    add_codec_options(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(handler=cmd_encode)

    p = sub.add_parser("decode", help="latents (.npy) -> audio (.wav/.flac)")
    p.add_argument("latents")
    add_codec_options(p)
    p.add_argument("-o", "--output", required=True)
    add_limit_option(p)
    p.set_defaults(handler=cmd_decode)


def cmd_codecs(args: argparse.Namespace) -> int:
    import json

    from workbench.core.codecs import list_codecs

    rows = list_codecs(weights=args.weights)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = f"{'id':<15} {'rate':>6} {'ch':>2} {'frames/s':>8} {'dim':>4}  {'weights':<8} notes"
    print(head)
    for r in rows:
        w = "present" if r.get("weights_present") else "missing"
        print(
            f"{r['id']:<15} {r['sample_rate']:>6} {r['channels']:>2} {r['frame_rate']:>8.2f} "
            f"{r['latent_dim']:>4}  {w:<8} {r.get('notes', '')}"
        )
    return 0


def save_npy(path: Path, array: Any) -> None:
    """Latents/features to .npy through the shared atomic writer; disk problems are one line."""
    from workbench.core.fileio import atomic_save_npy, disk_error

    check_npy_target(path)
    try:
        atomic_save_npy(path, array)
    except OSError as exc:
        raise disk_error(exc, path) from None


def check_npy_target(path: Path) -> None:
    """Before any work: the output must be a .npy in an existing folder, not a folder itself."""
    if path.suffix.lower() != ".npy":
        raise UsageError(f"{path}: latents and features are written as .npy")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: output folder does not exist")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder")


def cmd_encode(args: argparse.Namespace) -> int:
    from workbench.core.longaudio import encode_file

    out = Path(args.output)
    check_npy_target(out)
    codec = codec_from_args(args)
    z, _ = encode_file(args.audio, codec)  # long files in windows: memory bounded by the window
    save_npy(out, z)
    print(f"{out}: {z.shape[0]} frames x {z.shape[1]} dims at {codec.frame_rate:g} frames/s")
    return 0


def load_latents(path: str) -> Any:
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file")
    if not p.is_file():
        raise UsageError(f"{p}: not a regular file")
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise WorkbenchError(f"{p}: not a .npy latent file ({' '.join(str(exc).split())[:120]})") from None
    if not hasattr(z, "ndim") or z.ndim != 2:
        shape = getattr(z, "shape", None)
        raise WorkbenchError(f"{p}: latents must be a 2-D array [T, D], got shape {shape}")
    if z.dtype.kind not in "fiu":
        raise WorkbenchError(f"{p}: latents must be numeric, got dtype {z.dtype}")
    return z


def cmd_decode(args: argparse.Namespace) -> int:
    from workbench.core.audio import SAVE_FORMATS
    from workbench.core.longaudio import decode_to_file

    out = Path(args.output)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise UsageError(f"{out}: write .wav, .flac or .ogg")
    z = load_latents(args.latents)
    codec = codec_from_args(args)
    limiter = export_limiter(args, codec)
    n = decode_to_file(out, codec, z, limiter=limiter)  # block by block, written as it is decoded
    report_limiter(limiter)
    print(f"{args.output}: {n / codec.sample_rate:.2f} s, {codec.sample_rate} Hz, {codec.channels} ch")
    return 0
