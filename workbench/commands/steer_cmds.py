"""`workbench steer` (offline, writes WAV/FLAC) and `workbench play` (live, through the default output).

Both use the same core: `workbench.core.steering` for edits and the codec's block decoder (written to
a file block by block for `steer`, through `PlaybackEngine` for `play`); files are encoded in windows
(`workbench.core.longaudio`), so their length costs only their latents in memory. Both end in the
output limiter (`workbench.core.limiter`, peaks at -1 dBFS): always for `play`, unless ``--no-limit``
for `steer`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from workbench.commands.codec_cmds import add_limit_option, export_limiter, report_limiter
from workbench.core.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("steer", help="apply feature edits and write the steered audio")
    p.add_argument("audio")
    p.add_argument("--sae", required=True, help="SAE folder")
    p.add_argument("--codec", default=None, help="codec id (default: the SAE's codec)")
    p.add_argument("--latent", default=None, help="codec latent kind (default: the SAE's)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec)")
    p.add_argument("--edit", action="append", default=[], metavar="SPEC",
                   help="FEATURE:scale=V | FEATURE:add=V | FEATURE:set=V, or probe:PROPERTY=TARGET[:ALPHA] "
                        "(pitch|loudness|timbre; +N/-N classes from the current one, or class N; needs `workbench probe`), optionally @T0-T1 (seconds); repeatable")
    p.add_argument("-o", "--output", required=True)
    add_limit_option(p)
    p.set_defaults(handler=cmd_steer)

    p = sub.add_parser("play", help="play audio (optionally steered) through the default output device")
    p.add_argument("audio")
    p.add_argument("--sae", default=None)
    p.add_argument("--codec", default=None)
    p.add_argument("--latent", default=None)
    p.add_argument("--weights", default=None)
    p.add_argument("--edit", action="append", default=[], metavar="SPEC")
    p.add_argument("--device", default=None, help="output device name (default: the system default)")
    p.set_defaults(handler=cmd_play)


def prepare(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, list[Any]]:
    """(codec, samples, z, steering context or None, edits) shared by steer and play.

    The file is encoded in windows (`longaudio.encode_file`), so a long file costs its latents, not
    its samples; `samples` is its length at the codec's rate."""
    from workbench.core.codecs import get_codec
    from workbench.core.longaudio import encode_file
    from workbench.core.steering import SteeringContext, parse_edit

    edits = [parse_edit(s) for s in args.edit]
    sae = None
    codec_id = args.codec
    latent = args.latent
    if args.sae:
        from workbench.core.sae.io import load_sae

        sae = load_sae(args.sae)
        info = getattr(sae, "info", None)
        codec_id = codec_id or (info.codec_id if info else None) or "default"
        latent = latent or (info.latent_kind if info else None)
    elif edits:
        raise UsageError("--edit needs --sae (the features belong to an SAE)")
    codec = get_codec(codec_id or "default", latent=latent, weights=args.weights)
    if sae is not None and sae.d_in != codec.latent_dim:
        raise UsageError(
            f"the SAE expects {sae.d_in}-dim latents but codec '{codec.id}' has {codec.latent_dim}; pass --codec"
        )
    for e in edits:
        if sae is not None and e.feature >= sae.d_sae:
            raise UsageError(f"feature {e.feature} does not exist (this SAE has {sae.d_sae} features)")
    z, samples = encode_file(args.audio, codec)
    ctx = (SteeringContext.from_sae(sae, codec.frame_rate, getattr(codec, "loudness_channel", None))
           if sae is not None else None)
    return codec, samples, z, ctx, edits


def cmd_steer(args: argparse.Namespace) -> int:
    from workbench.core.audio import SAVE_FORMATS
    from workbench.core.longaudio import decode_to_file, steer_windowed

    out = Path(args.output)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise UsageError(f"{out}: write .wav, .flac or .ogg")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output folder does not exist")
    codec, samples, z, ctx, edits = prepare(args)
    z2 = steer_windowed(z, edits, ctx)  # SAE features of one window at a time
    limiter = export_limiter(args, codec)  # peaks at -1 dBFS unless --no-limit
    n = decode_to_file(out, codec, z2, samples, limiter=limiter)  # block decoder, written as it is decoded
    report_limiter(limiter)
    print(f"{out}: {n / codec.sample_rate:.2f} s, {len(edits)} edit(s) via {codec.id}")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from workbench.core.playback import PlaybackEngine
    from workbench.core.steering import apply_edits

    codec, samples, z, ctx, edits = prepare(args)
    z2 = apply_edits(z, edits, ctx) if ctx is not None else z
    engine = PlaybackEngine(codec, device=args.device)
    try:
        if not engine.has_device:
            raise UsageError("no audio output device found")
        engine.load(z, z2, num_samples=samples)
        engine.wait_buffered(0.3)
        engine.play()
        dur = engine.duration
        print(f"playing on '{engine.device.name if engine.device else '?'}' — Ctrl-C stops", file=sys.stderr)
        while engine.is_playing:
            print(f"\r{engine.position:6.2f} / {dur:.2f} s", end="", file=sys.stderr, flush=True)
            time.sleep(0.1)
        print(file=sys.stderr)
        if engine.message and "device" in engine.message and "stopped" in engine.message:
            raise UsageError(engine.message)
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    finally:
        engine.close()
    return 0
