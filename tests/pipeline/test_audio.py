from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esn.errors import AudioDecodeError, MissingDependencyError
from esn.pipeline.audio import audio_duration, load_audio

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg is not on PATH (apt-get install ffmpeg) to make and decode mp4s",
)


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, data, rate, subtype=subtype)
    return path


def test_reads_mono_float32(tmp_path) -> None:
    path = write(tmp_path / "a.wav", tone(0.25, 16000), 16000)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (4000,)
    np.testing.assert_allclose(audio, tone(0.25, 16000), atol=1e-4)


def test_resamples(tmp_path) -> None:
    path = write(tmp_path / "a.flac", tone(0.5, 8000), 8000)
    audio = load_audio(path, sample_rate=16000)
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 16000 / len(audio) == pytest.approx(440, abs=4)


def test_stereo_is_averaged(tmp_path) -> None:
    left, right = tone(0.1, 16000), np.zeros(1600, np.float32)
    path = write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, "FLOAT")
    np.testing.assert_allclose(load_audio(path), left / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: p.write_text("this is not audio\n" * 20), "unreadable: "),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "unreadable: "),
        (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "unreadable: "),
        (
            lambda p: p.write_bytes(
                write(p, np.full(800, 0.3, np.float32), 16000).read_bytes()[:900]
            ),
            "unreadable: truncated wav (856 of 1600 data bytes)",
        ),  # header intact, data cut
        (lambda p: write(p, np.zeros((0,), np.float32), 16000), "no audio samples"),
        (lambda p: write(p, np.zeros(1600, np.float32), 16000), "silent (peak below 0.0001)"),
        (
            lambda p: write(p, np.array([0.1, np.inf, 0.2] * 100, np.float32), 16000, "FLOAT"),
            "non-finite samples (NaN/inf)",
        ),
        (
            lambda p: write(p, np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, "FLOAT"),
            "non-finite samples (NaN/inf)",
        ),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
    ids=[
        "missing",
        "empty",
        "text",
        "png",
        "truncated-header",
        "truncated-data",
        "no-samples",
        "silent",
        "inf",
        "nan",
        "folder",
    ],
)
def test_bad_files_raise_audio_decode_error(tmp_path, make, reason) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert info.value.reason.startswith(reason)
    assert info.value.path == str(path)
    if reason == "unreadable: ":
        assert len(info.value.reason) > len(reason)


def test_audio_duration(tmp_path) -> None:
    assert audio_duration(write(tmp_path / "a.wav", np.full(16000, 0.1, np.float32), 32000)) == 0.5
    with pytest.raises(AudioDecodeError, match="empty file"):
        audio_duration((tmp_path / "e.wav", (tmp_path / "e.wav").write_bytes(b""))[0])


@pytest.fixture
def mp4(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.5:sample_rate=44100",
            "-ac",
            "2",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_mp4_through_ffmpeg(mp4) -> None:
    audio = load_audio(mp4, sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) < 1600  # AAC adds priming samples
    assert audio_duration(mp4) == pytest.approx(0.5, abs=0.05)


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_corrupt_mp4(tmp_path) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert info.value.reason.startswith("unreadable: ")
    assert str(path) not in info.value.reason  # the path is reported once, not in the reason


def test_missing_ffmpeg_names_it_and_how_to_install(tmp_path, monkeypatch) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(MissingDependencyError) as info:
        load_audio(path)
    message = str(info.value)
    assert "ffmpeg" in message and "apt-get install ffmpeg" in message and "conda" in message
    # A missing file is still reported as such, not as a missing program.
    with pytest.raises(AudioDecodeError, match="file not found"):
        load_audio(tmp_path / "absent.mp4")


def test_odd_paths_raise_audio_decode_error(tmp_path) -> None:
    with pytest.raises(AudioDecodeError):
        load_audio(str(tmp_path / "nul\x00byte.wav"))
    with pytest.raises(AudioDecodeError):
        load_audio(str(tmp_path / ("x" * 5000) / "long.wav"))
