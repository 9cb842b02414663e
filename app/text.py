"""Untrusted text made safe to show people.

File names, column headers and cell values come from uploaded files, and messages quote
them. Streamlit renders markdown (images that fetch remote URLs, links, colours) in
``st.error``, ``st.warning``, ``st.markdown`` and labels; a terminal runs escape
sequences. Every such string goes through one of these two functions.
"""

from __future__ import annotations

import re

# Every ASCII punctuation mark: CommonMark lets each be backslash-escaped, which also
# disarms Streamlit's own syntax (:red[...], :material/...:, $latex$).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# C0 and C1 controls (escape sequences, CR, LF, tab...) and bidirectional overrides.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def markdown(text: object) -> str:
    """``text`` as Streamlit markdown that displays it literally, on one line."""
    return _PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def terminal(text: object) -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\n``), so
    nothing a file carries can move the cursor, recolour or rewrite the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                        str(text))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 incident``, ``3 incidents``, ``1,204 anomalies`` (with ``plural``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def words(code: str) -> str:
    """A stored code as a reader says it: ``false_positive`` -> ``false positive``."""
    return code.replace("_", " ")


def change_in_words(before: dict | None, after: dict | None) -> str:
    """An audit event's before and after as a reader says them: ``status: new →
    confirmed; note: 'checked'``. Keys whose value stayed are left out; an event with
    only a before (something removed) says what it was."""
    before, after = before or {}, after or {}

    def said(value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list | tuple):
            return ", ".join(map(said, value)) or "none"
        if isinstance(value, dict):  # numbered keys are ids: {"6": "new"} is "#6 new"
            return ", ".join(f"{'#' if str(k).isdigit() else ''}{k} {said(v)}"
                             for k, v in value.items()) or "none"
        if isinstance(value, str):
            return words(value) if value.replace("_", "").isalnum() else f"'{value}'"
        return "none" if value is None else str(value)

    if not after:
        return "; ".join(f"was {words(k)}: {said(before[k])}" for k in sorted(before))
    # What changed first, then what was set; each by name (PostgreSQL's JSON keeps no
    # order of its own).
    changed = sorted(k for k in after if k in before and before[k] != after[k])
    changes = [f"{words(k)}: {said(before[k])} → {said(after[k])}" for k in changed]
    return "; ".join(changes + [f"{words(k)}: {said(after[k])}"
                                for k in sorted(after) if k not in before])
