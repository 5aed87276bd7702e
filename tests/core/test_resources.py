"""The shipped resources' reports, gathered for Help → About the loaded models."""

from __future__ import annotations

from pathlib import Path

from workbench.core.resources import default_codec_dir, default_sae_dir, model_documents


class _Codec:
    id = "encodec-24khz"
    folder = None

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "sample_rate": 24000, "latent_dim": 128}


def test_the_shipped_models_come_with_their_reports() -> None:
    class Shipped(_Codec):
        id = "default"
        folder = default_codec_dir()

    docs = model_documents(Shipped(), default_sae_dir())
    titles = [t for t, _, _ in docs]
    assert titles == ["Codec 'default' report", "Codec 'default' design", "SAE 'default' report",
                      "SAE 'default' probes", "SAE 'default' labels"]
    text = dict((t, m) for t, m, _ in docs)
    assert "pitch within 50 cents" in text["Codec 'default' report"]
    assert "Probe accuracy" in text["SAE 'default' probes"] and "AUROC" in text["SAE 'default' labels"]
    assert all(f in (default_codec_dir(), default_sae_dir()) for _, _, f in docs)


def test_models_without_reports_get_their_facts_or_a_pointer(tmp_path: Path) -> None:
    (tmp_path / "sae").mkdir()
    (tmp_path / "sae" / "labels-eval.md").write_bytes(b"\xff\xfe not utf-8 \xff")
    docs = model_documents(_Codec(), tmp_path / "sae")
    assert [t for t, _, _ in docs] == ["Codec 'encodec-24khz'", "SAE 'sae'"]
    assert "| latent_dim | 128 |" in docs[0][1] and "No report" in docs[0][1]
    assert "workbench probe" in docs[1][1]
    assert model_documents(None, None) == []
