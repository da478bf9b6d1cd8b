"""Reading one audio file as a mono float32 waveform at the rate a model expects.

soundfile reads what libsndfile knows (wav, flac, ogg...); mp4/m4a and other containers go
through the ``ffmpeg`` program. Every unusable file raises ``AudioDecodeError(path, reason)``
with a short reason, so a run can record it and go on.

What the model hears of a clip is its first ``listening_window`` seconds (the shorter of
the model's audio window and the user's ``--max-seconds``); ``heard_part`` cuts it there, so
every engine (extraction, replay, full generation) feeds the model the same samples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from esn.errors import AudioDecodeError, MissingDependencyError

__all__ = [
    "FFMPEG_SUFFIXES",
    "MIN_PEAK",
    "audio_duration",
    "check_waveform",
    "heard_part",
    "listening_window",
    "load_heard",
    "load_audio",
]

# Containers soundfile cannot open; they are decoded by ffmpeg.
FFMPEG_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4a", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".aac", ".wma", ".3gp"}
)
# Formats libsndfile reads natively; a failure on these is the file's fault, not a missing codec.
_SOUNDFILE_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".snd", ".caf", ".w64"}
)
# Peak amplitude below which a file counts as silent (about -80 dBFS; 16-bit dither is ~3e-5).
MIN_PEAK = 1e-4
FFMPEG_TIMEOUT_S = 600

_INSTALL_FFMPEG = (
    "install it with `apt-get install ffmpeg` (Debian/Ubuntu), "
    "`conda install -c conda-forge ffmpeg` or `brew install ffmpeg`"
)


def load_audio(
    path: str | os.PathLike[str], sample_rate: int = 16000, *, min_peak: float = MIN_PEAK
) -> np.ndarray:
    """Read ``path`` as a mono float32 waveform resampled to ``sample_rate``.

    Returns:
        Array of shape ``(n_samples,)``, dtype float32.

    Raises:
        AudioDecodeError: the file is missing, empty, unreadable, has no samples, is silent
            (peak below ``min_peak``) or holds NaN/inf.
        MissingDependencyError: the file needs ffmpeg and ffmpeg is not on PATH.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    file = _usable_file(path)
    if file.suffix.lower() in FFMPEG_SUFFIXES:
        waveform = _decode_ffmpeg(file, sample_rate)
        rate = sample_rate
    else:
        try:
            waveform, rate = _decode_soundfile(file)
        except AudioDecodeError:
            # An exotic suffix soundfile does not know (mp3 on old libsndfile, wma...):
            # ffmpeg may still read it; wav/flac failures are the file's own fault.
            if file.suffix.lower() in _SOUNDFILE_SUFFIXES or shutil.which("ffmpeg") is None:
                raise
            waveform, rate = _decode_ffmpeg(file, sample_rate), sample_rate
    check_waveform(waveform, str(path), min_peak=min_peak)
    if rate != sample_rate:
        waveform = _resample(waveform, rate, sample_rate, str(path))
    return np.ascontiguousarray(waveform, dtype=np.float32)


def listening_window(model_window: float | None, max_seconds: float | None) -> float | None:
    """The most seconds of a clip the model hears: the shorter of its own audio window
    (``ModelAdapter.max_audio_seconds``) and the cut the user asked for; ``None``: all."""
    limits = [s for s in (model_window, max_seconds) if s is not None]
    return min(limits) if limits else None


def heard_part(waveform: np.ndarray, sample_rate: int, window: float | None) -> np.ndarray:
    """The first ``window`` seconds of ``waveform`` (``floor(window * rate)`` samples; the
    whole clip when it is shorter or ``window`` is ``None``). The result is shorter than the
    input exactly when the clip was cut."""
    if window is None:
        return waveform
    return waveform[:int(window * sample_rate)]


def load_heard(path: str | os.PathLike[str], sample_rate: int,
               window: float | None) -> np.ndarray:
    """``load_audio`` cut to what the model hears (``heard_part``)."""
    return heard_part(load_audio(path, sample_rate), sample_rate, window)


def check_waveform(waveform: np.ndarray, path: str, *, min_peak: float = MIN_PEAK) -> None:
    """Raise ``AudioDecodeError`` if ``waveform`` has no samples, non-finite ones, or is silent."""
    if waveform.size == 0:
        raise AudioDecodeError(path, "no audio samples")
    if not np.isfinite(waveform).all():
        raise AudioDecodeError(path, "non-finite samples (NaN/inf)")
    peak = float(np.max(np.abs(waveform)))
    if peak < min_peak:
        raise AudioDecodeError(path, f"silent (peak below {min_peak:g})")


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration in seconds from the file header (no decoding); ffprobe for containers."""
    file = _usable_file(path)
    if file.suffix.lower() not in FFMPEG_SUFFIXES:
        try:
            info = sf.info(str(file))
        except Exception as exc:  # libsndfile raises several types for bad files
            if file.suffix.lower() in _SOUNDFILE_SUFFIXES or shutil.which("ffprobe") is None:
                raise AudioDecodeError(str(path), f"unreadable: {_first_line(exc)}") from exc
        else:
            return float(info.frames) / float(info.samplerate) if info.samplerate else 0.0
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise MissingDependencyError(
            f"ffprobe (part of ffmpeg) is needed to read {file.suffix} files such as {file} "
            f"but is not on PATH; {_INSTALL_FFMPEG}"
        )
    proc = _run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(file)],
        str(file),
    )
    try:
        return float(proc.stdout.decode("utf-8", errors="replace").strip())
    except ValueError as exc:
        reason = _first_line(proc.stderr.decode("utf-8", errors="replace")) or "no duration"
        raise AudioDecodeError(str(path), f"unreadable: {reason}") from exc


def _usable_file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    try:
        exists, is_file = file.exists(), file.is_file()
        size = file.stat().st_size if is_file else 0
    except (OSError, ValueError) as exc:  # permissions, a NUL byte in the path...
        reason = getattr(exc, "strerror", None) or exc
        raise AudioDecodeError(str(path), f"unreadable: {reason}") from exc
    if not exists:
        raise AudioDecodeError(str(path), "file not found")
    if not is_file:
        raise AudioDecodeError(str(path), "not a regular file")
    if size == 0:
        raise AudioDecodeError(str(path), "empty file (0 bytes)")
    return file


def _decode_soundfile(file: Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(str(file), dtype="float32", always_2d=True)
        if file.suffix.lower() in {".wav", ".wave"}:
            _check_wav_length(file)
    except AudioDecodeError:
        raise
    except Exception as exc:  # LibsndfileError, RuntimeError, TypeError, EOFError, OSError...
        raise AudioDecodeError(str(file), f"unreadable: {_first_line(exc)}") from exc
    waveform = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return waveform, int(rate)


def _check_wav_length(file: Path) -> None:
    """Reject a RIFF wav cut short: libsndfile silently reads the part that is there."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return  # RF64, RIFX...: leave to libsndfile
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            declared = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                # 0 and 0xFFFFFFFF are placeholders of streaming writers: length unknown.
                available = size - offset - 8
                if 0 < declared < 0xFFFFFFFF and declared > available:
                    raise AudioDecodeError(
                        str(file),
                        f"unreadable: truncated wav ({available} of {declared} data bytes)",
                    )
                return
            offset += 8 + declared + (declared & 1)


def _decode_ffmpeg(file: Path, sample_rate: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MissingDependencyError(
            f"ffmpeg is needed to decode {file.suffix} audio such as {file} but is not on "
            f"PATH; {_INSTALL_FFMPEG}"
        )
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(file)]
    command += ["-vn", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = _run(command, str(file))
    usable = len(proc.stdout) - len(proc.stdout) % 4
    return np.frombuffer(proc.stdout[:usable], dtype="<f4").astype(np.float32)


def _run(command: list[str], path: str) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeError(
            path, f"unreadable: decoding took over {FFMPEG_TIMEOUT_S} s"
        ) from exc
    except OSError as exc:
        raise AudioDecodeError(path, f"unreadable: cannot run {command[0]}: {exc}") from exc
    if proc.returncode != 0:
        message = _first_line(proc.stderr.decode("utf-8", errors="replace"))
        # ffmpeg prefixes its messages with the input path, which the error reports already.
        message = message.removeprefix(f"{path}: ")
        raise AudioDecodeError(path, f"unreadable: {message or f'exit status {proc.returncode}'}")
    return proc


def _resample(waveform: np.ndarray, rate: int, sample_rate: int, path: str) -> np.ndarray:
    import librosa  # slow to import; only files at another rate need it

    try:
        return librosa.resample(waveform, orig_sr=rate, target_sr=sample_rate)
    except Exception as exc:  # any resampler failure is this file's failure
        raise AudioDecodeError(path, f"unreadable: resampling failed: {_first_line(exc)}") from exc


def _first_line(error: object) -> str:
    """The first non-empty line of an error or stderr text, trimmed to a readable length."""
    # LibsndfileError's message repeats the path ("Error opening '...': Format not recognised.").
    text = str(getattr(error, "error_string", None) or error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."
