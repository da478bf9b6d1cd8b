"""Small tokenizers for the built-in tiny models, built offline from a fixed word list.

``word_level_tokenizer`` makes a ``tokenizers`` word-level tokenizer wrapped for transformers
(the Qwen-style families); ``tekken_tokenizer`` makes a tiny mistral-common tekken tokenizer
(byte-level BPE plus the real control-token ids) wrapped as transformers'
``MistralCommonBackend`` (Voxtral); ``qwen2_bpe_tokenizer`` makes a byte-level BPE tokenizer
with Qwen2's pre-tokenizer (every digit its own piece, so ``"12"`` is ``"1"``, ``"2"``), for
tests of how answers split into tokens. All know the probe's words: digits, number words,
emotion names and common prompt words.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esn.errors import MissingDependencyError

__all__ = ["PROBE_WORDS", "qwen2_bpe_tokenizer", "tekken_tokenizer", "word_level_tokenizer"]

PROBE_WORDS: tuple[str, ...] = (
    *"0123456789",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "anger", "angry", "happy", "happiness", "neutral", "sad", "sadness", "surprise",
    "surprised", "fear", "fearful", "disgust", "disgusted", "frustration", "frustrated",
    "calm", "excited", "contempt", "other",
    "a", "an", "the", "and", "or", "of", "to", "in", "is", "are", "it", "this", "that", "with",
    "by", "for", "on", "as", "be", "from", "your", "you", "i", "not", "no", "yes",
    "what", "which", "how", "who", "emotion", "emotions", "speaker", "voice",
    "audio", "clip", "recording", "speech", "expressing", "expresses", "express", "expressed",
    "listen", "hear", "choose", "select", "pick", "answer", "reply", "respond", "only",
    "number", "numbers", "option", "options", "following", "best", "describes", "describe",
    "recognize", "keywords", "english", "just", "single", "digit", "word", "words", "nothing",
    "else", "please", "helpful", "assistant", "user", "system", "label", "labels", "correct",
    "feel", "feeling", "feels", "tone", "sound", "sounds", "given", "candidate",
    "candidates", "list", "here", "there", "these", "those", "among", "most", "likely",
    "question", "transcribe", "input", "do", "does", "tell", "me",
)
PUNCTUATION: tuple[str, ...] = (".", ",", "?", ":", ";", "!", "(", ")", "-", "'", '"', "/", "=")


def word_level_tokenizer(
    special_tokens: Sequence[str],
    *,
    pad_token: str,
    eos_token: str,
    extra_special_tokens: Mapping[str, str] | None = None,
) -> Any:
    """A lower-casing word-level tokenizer: ``special_tokens`` first (ids 0..), then ``<unk>``,
    newline, punctuation and ``PROBE_WORDS``. Words split on whitespace (newlines kept as
    tokens), punctuation and single digits; unknown words become ``<unk>``.

    ``extra_special_tokens`` names tokens as attributes (``tok.audio_token``), as the Omni
    processor expects. Returns a transformers tokenizer (``TokenizersBackend`` in 5.x).
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    names = [*special_tokens, "<unk>", "\n", *PUNCTUATION, *PROBE_WORDS]
    vocab = {name: i for i, name in enumerate(dict.fromkeys(names))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[^\S\n]+"), "removed"),
        pre_tokenizers.Split("\n", "isolated"),
        pre_tokenizers.Punctuation("isolated"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    core.add_special_tokens([*special_tokens, "<unk>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=pad_token, unk_token="<unk>", eos_token=eos_token,
        extra_special_tokens=dict(extra_special_tokens or {}),
    )
    named = {pad_token, eos_token, *(extra_special_tokens or {}).values()}
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [t for t in special_tokens if t not in named]}
    )
    return tokenizer


#: Qwen2's pre-tokenizer split (its tokenizer.json): contractions, letters with one leading
#: non-letter, each digit alone (``\p{N}``), punctuation runs, newlines, spaces.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_chars() -> dict[int, str]:
    """GPT-2's byte-to-character map, which byte-level BPE vocabularies are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = dict.fromkeys(range(256), "")
    extra = 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def qwen2_bpe_tokenizer(
    special_tokens: Sequence[str], *, pad_token: str, eos_token: str,
) -> Any:
    """A byte-level BPE tokenizer split as Qwen2's (``QWEN2_PATTERN``, then bytes): the 256
    byte pieces, then merges building each probe word (capitalised too, with and without a
    leading space) from its prefixes, shortest first. Any text encodes (bytes at worst) and
    decodes back. ``special_tokens`` come first (ids 0..). Returns a transformers tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = _byte_chars()
    vocab: dict[str, int] = {t: i for i, t in enumerate(special_tokens)}
    for b in range(256):
        vocab.setdefault(chars[b], len(vocab))
    forms = [
        "".join(chars[b] for b in (prefix + form).encode())
        for w in PROBE_WORDS if not w.isdigit()
        for form in dict.fromkeys((w, w.capitalize())) for prefix in ("", " ")
    ]
    merges: list[tuple[str, str]] = []
    for length in range(2, max(len(f) for f in forms) + 1):
        for form in forms:
            if len(form) >= length and form[:length] not in vocab:
                merges.append((form[:length - 1], form[length - 1]))
                vocab[form[:length]] = len(vocab)
    core = Tokenizer(models.BPE(vocab, merges, ignore_merges=False))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(special_tokens))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=pad_token,
                                        eos_token=eos_token)
    named = {pad_token, eos_token}
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [t for t in special_tokens if t not in named]})
    return tokenizer


# Control tokens at the ranks the real tekken files use: the processor and the audio
# encoder look [AUDIO] (24) and [BEGIN_AUDIO] (25) up by these ids.
_TEKKEN_SPECIAL: tuple[str, ...] = (
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]", "<SPECIAL_20>", "<SPECIAL_21>", "<SPECIAL_22>", "<SPECIAL_23>",
    "[AUDIO]", "[BEGIN_AUDIO]", "<SPECIAL_26>", "<SPECIAL_27>", "<SPECIAL_28>", "<SPECIAL_29>",
    "<SPECIAL_30>", "<SPECIAL_31>", "[ARGS]", "[CALL_ID]", "[TRANSCRIBE]",
)
N_TEKKEN_SPECIAL = 40
# Letters, then digits one at a time, then punctuation runs, then newlines and spaces.
_TEKKEN_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?\p{L}+(?:'\p{L}+)?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _tekken_vocab() -> list[bytes]:
    """All 256 bytes, then every prefix (length >= 2) of each probe word (also capitalised)
    with and without a leading space, shortest first, so that byte-level BPE merges each
    word into one token."""
    pieces: dict[bytes, None] = {bytes([b]): None for b in range(256)}
    words = [w for w in PROBE_WORDS if not w.isdigit()]
    forms = [
        prefix + form.encode()
        for w in words for form in dict.fromkeys((w, w.capitalize())) for prefix in (b"", b" ")
    ]
    for length in range(2, max(len(f) for f in forms) + 1):
        for form in forms:
            if len(form) >= length:
                pieces.setdefault(form[:length], None)
    return list(pieces)


def tekken_tokenizer(
    *, sampling_rate: int, frame_rate: float, chunk_length_s: float, num_mel_bins: int = 128,
) -> Any:
    """A tiny tekken tokenizer (mistral-common, version v7, audio enabled) wrapped as
    ``MistralCommonBackend``. Audio is padded to multiples of ``chunk_length_s`` and gets
    ``frame_rate`` ``[AUDIO]`` tokens per second after ``[BEGIN_AUDIO]``.

    mistral-common only reads tokenizers from files, so the JSON (about 60 kB) is written to a
    temporary directory that lives as long as the returned tokenizer.
    """
    try:
        import mistral_common  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            "the tiny Voxtral model needs mistral-common for its tokenizer: "
            "pip install mistral-common"
        ) from err
    from transformers.tokenization_mistral_common import MistralCommonBackend

    vocab = _tekken_vocab()
    data = {
        "config": {
            "pattern": _TEKKEN_PATTERN,
            "num_vocab_tokens": len(vocab),
            "default_vocab_size": len(vocab) + N_TEKKEN_SPECIAL,
            "default_num_special_tokens": N_TEKKEN_SPECIAL,
            "version": "v7",
        },
        "vocab": [
            {"rank": i, "token_bytes": base64.b64encode(piece).decode(),
             "token_str": piece.decode("utf-8", errors="replace")}
            for i, piece in enumerate(vocab)
        ],
        "special_tokens": [
            {"rank": i, "token_str": name, "is_control": True}
            for i, name in enumerate(_TEKKEN_SPECIAL)
        ],
        "audio": {
            "sampling_rate": sampling_rate,
            "frame_rate": frame_rate,
            "chunk_length_s": chunk_length_s,
            "audio_encoding_config": {
                "num_mel_bins": num_mel_bins, "hop_length": 160, "window_size": 400,
            },
        },
        "version": 1,
        "type": "Tekken",
    }
    folder = Path(tempfile.mkdtemp(prefix="esn-tiny-tekken-"))
    path = folder / "tekken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    tokenizer = MistralCommonBackend(tokenizer_path=path, padding_side="left")
    # save_pretrained copies the file: keep it while the tokenizer lives, remove it when the
    # tokenizer is garbage-collected or at exit.
    weakref.finalize(tokenizer, shutil.rmtree, folder, ignore_errors=True)
    return tokenizer
