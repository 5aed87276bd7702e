"""Codecs: the contract, the registry, EnCodec and the embedded default codec."""

from workbench.core.codecs.base import Codec
from workbench.core.codecs.registry import codec_ids, get_codec, list_codecs

__all__ = ["Codec", "codec_ids", "get_codec", "list_codecs"]
