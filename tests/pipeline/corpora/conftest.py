"""Fixtures that write tiny corpora in their published layouts, with synthesized audio.

Each fixture returns a ``Tree``: the root to load, and the expected listing written out by
hand (id -> emotion, speaker, split), so tests compare against the layout, not the loader.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

HAVE_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(
    not HAVE_FFMPEG, reason="ffmpeg is not on PATH (apt-get install ffmpeg) to make/decode mp4s"
)


@dataclasses.dataclass
class Tree:
    """A corpus written by a fixture and what its loader must list."""

    root: Path
    expected: dict[str, tuple[str, str | None, str | None]]  # id -> (emotion, speaker, split)
    missing: list[Path] = dataclasses.field(default_factory=list)  # labelled, no audio
    n_unlabelled: int = 0


def write_wav(
    path: Path,
    *,
    seconds: float = 0.05,
    sample_rate: int = 16000,
    freq: float = 440.0,
    channels: int = 1,
) -> Path:
    """A short sine tone with a little noise, PCM_16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(freq))
    tone = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    data = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
    sf.write(path, data.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


# --- IEMOCAP -------------------------------------------------------------------------------

_IEMOCAP_S1 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral state;\t()
C-E3:\tNeutral state;\t()
C-F1:\tNeutral state;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.0000, 3.0000, 3.0000]
C-E2:\tFrustration;\t()
C-E4:\tAnger; Frustration;\t()

[14.8872 - 18.0175]\tSes01F_impro01_F001\txxx\t[2.5000, 3.5000, 3.0000]
C-E2:\tNeutral state;\t()
C-E3:\tSadness;\t()

[19.2900 - 20.7875]\tSes01F_impro01_M001\texc\t[4.0000, 3.5000, 3.0000]
C-E1:\tExcited;\t()
"""

_IEMOCAP_S2 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[1.0000 - 2.5000]\tSes02M_script01_1_F003\tang\t[1.5000, 4.0000, 4.0000]
C-E1:\tAnger;\t()

[3.0000 - 4.5000]\tSes02M_script01_1_M004\tsad\t[1.5000, 2.0000, 2.0000]

[5.0000 - 6.5000]\tSes02M_script01_1_M005\thap\t[4.0000, 3.0000, 3.0000]
"""


@pytest.fixture
def iemocap_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "IEMOCAP_full_release"
    s1 = root / "Session1"
    (s1 / "dialog" / "EmoEvaluation" / "Categorical").mkdir(parents=True)
    (s1 / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(_IEMOCAP_S1)
    # Per-evaluator files in subfolders are not label files and must be ignored.
    (s1 / "dialog" / "EmoEvaluation" / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text(
        "Ses01F_impro01_F000 :Sadness; ()\n"
    )
    for utt in ("F000", "M000", "F001", "M001"):
        write_wav(s1 / "sentences" / "wav" / "Ses01F_impro01" / f"Ses01F_impro01_{utt}.wav")
    s2 = root / "Session2"
    (s2 / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (s2 / "dialog" / "EmoEvaluation" / "Ses02M_script01_1.txt").write_text(_IEMOCAP_S2)
    for utt in ("F003", "M004"):  # M005 is labelled but has no audio
        name = f"Ses02M_script01_1_{utt}.wav"
        write_wav(s2 / "sentences" / "wav" / "Ses02M_script01_1" / name, sample_rate=8000)
    return Tree(
        root=root,
        expected={
            "Ses01F_impro01_F000": ("neutral", "Ses01F", None),
            "Ses01F_impro01_M000": ("frustration", "Ses01M", None),
            "Ses01F_impro01_M001": ("excited", "Ses01M", None),
            "Ses02M_script01_1_F003": ("anger", "Ses02F", None),
            "Ses02M_script01_1_M004": ("sad", "Ses02M", None),
        },
        missing=[s2 / "sentences" / "wav" / "Ses02M_script01_1" / "Ses02M_script01_1_M005.wav"],
        n_unlabelled=1,
    )


# --- MELD ----------------------------------------------------------------------------------

_MELD_HEADER = (
    b"Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
    b"StartTime,EndTime\r\n"
)
# (split, Sr No., utterance bytes (cp1252 quirks included), speaker, emotion, dialogue, utt)
_MELD_ROWS: list[tuple[str, int, bytes, str, str, int, int]] = [
    (
        "train",
        1,
        b"also I was the point person on my company\x92s transition",
        "Chandler",
        "neutral",
        0,
        0,
    ),
    ("train", 2, b"You must\x92ve had your hands full.", "The Interviewer", "joy", 0, 1),
    ("train", 3, b'"Well, that\x85 that\'s it, okay?"', "Monica", "anger", 1, 0),
    ("train", 4, b"No clip for this one.", "Ross", "sadness", 2, 0),
    ("dev", 1, b"Oh my God!", "Joey", "surprise", 0, 0),
    ("dev", 2, b'"I\x92m sorry, Ross."', "Rachel", "sadness", 0, 1),
    (
        "test",
        1,
        b"Why do all you\x92re coffee mugs have numbers on the bottom?",
        "Phoebe",
        "fear",
        0,
        0,
    ),
    ("test", 2, b"Eww.", "Chandler", "disgust", 3, 2),
]


@pytest.fixture(scope="session")
def mp4_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real mp4 (tiny video + AAC audio) when ffmpeg exists, else placeholder bytes."""
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    if not HAVE_FFMPEG:
        path.write_bytes(b"placeholder: ffmpeg is not installed")
        return path
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.3:sample_rate=44100",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=16x16:d=0.3:r=10",
            "-c:a",
            "aac",
            "-c:v",
            "mpeg4",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture
def meld_tree(tmp_path: Path, mp4_clip: Path) -> Tree:
    root = tmp_path / "MELD.Raw"
    folders = {
        "train": root / "train" / "train_splits",  # one level down
        "dev": root / "dev_splits_complete",  # directly under the root
        "test": root / "output_repeated_splits_test",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    csv_bytes = {split: _MELD_HEADER for split in folders}
    for split, sr_no, text, speaker, emotion, dia, utt in _MELD_ROWS:
        row = b'%d,%s,%s,%s,neutral,%d,%d,3,19,"00:14:38,792","00:14:40,917"\r\n' % (
            sr_no,
            text,
            speaker.encode(),
            emotion.encode(),
            dia,
            utt,
        )
        csv_bytes[split] += row
        if (split, dia, utt) != ("train", 2, 0):
            shutil.copyfile(mp4_clip, folders[split] / f"dia{dia}_utt{utt}.mp4")
    for split, data in csv_bytes.items():
        (root / f"{split}_sent_emo.csv").write_bytes(data)
    return Tree(
        root=root,
        expected={
            "train_dia0_utt0": ("neutral", "Chandler", "train"),
            "train_dia0_utt1": ("happy", "The Interviewer", "train"),
            "train_dia1_utt0": ("anger", "Monica", "train"),
            "dev_dia0_utt0": ("surprise", "Joey", "dev"),
            "dev_dia0_utt1": ("sad", "Rachel", "dev"),
            "test_dia0_utt0": ("fear", "Phoebe", "test"),
            "test_dia3_utt2": ("disgust", "Chandler", "test"),
        },
        missing=[folders["train"] / "dia2_utt0.mp4"],
    )


# --- MSP-Podcast ---------------------------------------------------------------------------

_MSP_ROWS = [
    ("MSP-PODCAST_0001_0008.wav", "N", "127", "Female", "Train"),
    ("MSP-PODCAST_0001_0009.wav", "A", "127", "Female", "Train"),
    ("MSP-PODCAST_0002_0033.wav", "H", "Unknown", "Unknown", "Development"),
    ("MSP-PODCAST_0003_0010.wav", "X", "54", "Male", "Test1"),
    ("MSP-PODCAST_0004_0011.wav", "S", "54", "Male", "Test1"),
    ("MSP-PODCAST_0005_0001.wav", "U", "301", "Male", "Test2"),
    ("MSP-PODCAST_0006_0002.wav", "C", "88", "Female", "Test3"),
    ("MSP-PODCAST_0007_0003.wav", "F", "88", "Female", "Train"),  # no audio file
]


@pytest.fixture
def msp_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "MSP-Podcast"
    (root / "Labels").mkdir(parents=True)
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for name, code, speaker, gender, split in _MSP_ROWS:
        lines.append(f"{name},{code},4.2,3.8,4.0,{speaker},{gender},{split}")
        if not name.endswith("0007_0003.wav"):
            write_wav(root / "Audios" / name)
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    return Tree(
        root=root,
        expected={
            "MSP-PODCAST_0001_0008": ("neutral", "127", "train"),
            "MSP-PODCAST_0001_0009": ("anger", "127", "train"),
            "MSP-PODCAST_0002_0033": ("happy", None, "development"),
            "MSP-PODCAST_0004_0011": ("sad", "54", "test1"),
            "MSP-PODCAST_0005_0001": ("surprise", "301", "test2"),
            "MSP-PODCAST_0006_0002": ("contempt", "88", "test3"),
        },
        missing=[root / "Audios" / "MSP-PODCAST_0007_0003.wav"],
        n_unlabelled=1,
    )


# --- RAVDESS, CREMA-D, TESS, ESD -----------------------------------------------------------


@pytest.fixture
def ravdess_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "RAVDESS"
    names = {
        "Actor_01/03-01-05-01-02-01-01.wav": ("anger", "Actor_01"),
        "Actor_01/03-01-01-01-01-01-01.wav": ("neutral", "Actor_01"),
        "Actor_02/03-01-02-02-01-02-02.wav": ("calm", "Actor_02"),
        "Actor_02/03-02-03-01-01-01-02.wav": ("happy", "Actor_02"),  # song
        "Actor_02/03-01-08-02-02-01-02.wav": ("surprise", "Actor_02"),
        "Actor_02/03-01-06-01-01-01-02.wav": ("fear", "Actor_02"),
        "Actor_02/03-01-07-02-01-01-02.wav": ("disgust", "Actor_02"),
        "Actor_02/03-01-04-01-02-02-02.wav": ("sad", "Actor_02"),
    }
    for name in names:
        write_wav(root / name, sample_rate=48000)
    write_wav(root / "Actor_01" / "02-01-05-01-02-01-01.wav")  # video-only modality: skipped
    return Tree(
        root=root,
        expected={Path(n).stem: (e, s, None) for n, (e, s) in names.items()},
    )


CREMAD_FILES = {
    "1001_DFA_ANG_XX": ("anger", "1001"),
    "1001_IEO_HAP_HI": ("happy", "1001"),
    "1002_TIE_SAD_LO": ("sad", "1002"),
    "1002_ITS_FEA_MD": ("fear", "1002"),
    "1091_WSI_NEU_XX": ("neutral", "1091"),
    "1003_IWW_DIS_XX": ("disgust", "1003"),
}


@pytest.fixture
def cremad_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "CREMA-D"
    for stem in CREMAD_FILES:
        write_wav(root / "AudioWAV" / f"{stem}.wav")
    return Tree(root=root, expected={k: (e, s, None) for k, (e, s) in CREMAD_FILES.items()})


@pytest.fixture
def tess_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "tess"
    data = root / "TESS Toronto emotional speech set data"
    files = {
        "OAF_angry/OAF_back_angry.wav": ("anger", "OAF"),
        "OAF_Pleasant_surprise/OAF_bath_ps.wav": ("surprise", "OAF"),
        "OAF_Sad/OAF_chair_sad.wav": ("sad", "OAF"),
        "OAF_happy/OAF_juice_happy.wav": ("happy", "OAF"),
        "YAF_pleasant_surprised/YAF_bath_ps.wav": ("surprise", "YAF"),
        "YAF_neutral/YAF_dog_neutral.wav": ("neutral", "YAF"),
        "YAF_disgust/YAF_fit_disgust.wav": ("disgust", "YAF"),
        "YAF_fear/YAF_gas_fear.wav": ("fear", "YAF"),
    }
    for name in files:
        write_wav(data / name, sample_rate=24414)
    # Some copies hold the whole tree twice; the recording must be listed once.
    write_wav(data / "TESS Toronto emotional speech set data" / "OAF_angry" / "OAF_back_angry.wav")
    return Tree(root=root, expected={Path(n).stem: (e, s, None) for n, (e, s) in files.items()})


@pytest.fixture
def esd_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "Emotion Speech Dataset"
    files = {
        "0011/Neutral/train/0011_000001.wav": ("neutral", "0011", "train"),
        "0011/Neutral/test/0011_000002.wav": ("neutral", "0011", "test"),
        "0011/Angry/evaluation/0011_000351.wav": ("anger", "0011", "evaluation"),
        "0011/Happy/train/0011_000701.wav": ("happy", "0011", "train"),
        "0012/Sad/test/0012_001051.wav": ("sad", "0012", "test"),
        "0012/Surprise/train/0012_001401.wav": ("surprise", "0012", "train"),
    }
    for name in files:
        write_wav(root / name)
    (root / "0011" / "0011.txt").write_text("0011_000001\tHello there.\tNeutral\n")
    return Tree(root=root, expected={Path(n).stem: v for n, v in files.items()})


@pytest.fixture
def wav_writer():
    """``write_wav`` for tests that build their own trees."""
    return write_wav


@pytest.fixture
def as_table():
    """Turn a loader's utterances into ``{id: (emotion, speaker, split)}`` for comparison."""

    def table(utterances) -> dict[str, tuple[str, str | None, str | None]]:
        return {u.id: (u.emotion, u.speaker, u.split) for u in utterances}

    return table
