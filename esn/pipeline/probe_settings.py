"""A model's own probe settings: what the built-in models were trained to answer, used unless
the user says otherwise.

``esn-organism`` (and an organism retrained with ``esn organism train --out DIR``, loaded
by its folder) was trained on one prompt with the options in a fixed order and a
one-token answer: its ``organism.json`` records them. ``esn-whisper-smollm2`` was trained
with the options in a random order per item, on esn's standard question, answering
"sad, 4" (a few tokens). Any other model gets esn's defaults (random order, the standard
question, 20 new tokens). ``choose_probe`` fills what the user left unset from these and
says so in one line, with a warning for each setting the model was not trained for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from esn.pipeline.probe import DEFAULT_TEMPLATE

__all__ = ["GENERIC", "ProbeSettings", "choose_probe", "organism_folder",
           "recommended_settings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """Option order, probe text (with an ``{options}`` field) and answer length."""

    option_order: str
    template: str
    max_new_tokens: int


#: esn's defaults for a model without settings of its own.
GENERIC = ProbeSettings(option_order="random", template=DEFAULT_TEMPLATE, max_new_tokens=20)


def organism_folder(model_id: str) -> Path | None:
    """The folder of a retrained organism (``esn organism train --out DIR``) named by its
    path, else ``None``."""
    from esn.pipeline.organism.model import RECORD_FILE, WEIGHTS_FILE

    path = Path(model_id).expanduser()
    if path.is_dir() and (path / RECORD_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
        return path
    return None


def recommended_settings(model_id: str) -> ProbeSettings | None:
    """The settings a built-in or retrained organism was trained for, else ``None``."""
    from esn.pipeline.organism.model import ORGANISM_ID, WEIGHTS_DIR, organism_record
    from esn.pipeline.weights.builtin import PRETRAINED_ID
    from esn.pipeline.weights.organism import EVAL_PROBE

    folder = WEIGHTS_DIR if model_id == ORGANISM_ID else organism_folder(model_id)
    if folder is not None:
        probe = organism_record(folder)["probe"]
        return ProbeSettings(option_order=str(probe["option_order"]),
                             template=str(probe["template"]),
                             max_new_tokens=int(probe["max_new_tokens"]))
    if model_id == PRETRAINED_ID:
        return ProbeSettings(option_order=str(EVAL_PROBE["option_order"]),
                             template=DEFAULT_TEMPLATE,
                             max_new_tokens=int(EVAL_PROBE["max_new_tokens"]))
    return None


def choose_probe(model_id: str, *, option_order: str | None = None,
                 template: str | None = None, max_new_tokens: int | None = None
                 ) -> tuple[ProbeSettings, list[str]]:
    """The settings to probe ``model_id`` with: each one the user's where given, else the
    model's recommended one, else esn's default; and the lines to show (which settings are
    the model's own, and a warning per override it was not trained for)."""
    own = recommended_settings(model_id)
    base = own or GENERIC
    given = {"option_order": option_order, "template": template,
             "max_new_tokens": max_new_tokens}
    chosen = ProbeSettings(**{k: (v if v is not None else getattr(base, k))
                              for k, v in given.items()})  # type: ignore[arg-type]
    if own is None:
        return chosen, []
    unset = [k for k, v in given.items() if v is None]
    names = {"option_order": f"option order {own.option_order}",
             "template": "its training prompt" if own.template != DEFAULT_TEMPLATE
             else "esn's standard prompt",
             "max_new_tokens": f"{own.max_new_tokens} new tokens"}
    lines = []
    if unset:
        lines.append(f"probe: {model_id}'s own settings ({', '.join(names[k] for k in unset)})"
                     + ("" if len(unset) == len(given) else "; the rest as given")
                     + "; --option-order, --template and --max-new-tokens override them")
    if option_order is not None and option_order != own.option_order:
        lines.append(f"warning: {model_id} was trained with option order {own.option_order}, "
                     f"not {option_order}: expect answers near chance")
    if template is not None and template != own.template:
        lines.append(f"warning: {model_id} was trained on another prompt "
                     f"({own.template!r}): expect answers near chance")
    return chosen, lines
