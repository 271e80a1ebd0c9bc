"""Parse emotion scores out of a chat model's free-text answer.

`parse_scores(text, emotions)` returns float32[E]: the score for each emotion, clamped to [0, 1],
NaN where no score is found. It never raises on any string.

How a score is found, per emotion:
1. "<number> for|on|in|to <emotion>" ("0.3 for adoration") binds the number before the name.
2. Otherwise the first number after a mention of the emotion, on the same line and before the next
   emotion is mentioned ("Adoration: 0.3", "- adoration - 0.3", '"adoration": 0.3', "Fear (about 0.4)").
   The first mention with a number wins, so an echoed question before the answer does no harm.
Numbers: 0.3, .3, 0,3, 30% / 30 percent, 3/10, 7 out of 10. Where the answer states its own scale
("on a scale of 0 to 10", "(0-100)"), plain numbers are divided by it; otherwise a plain number above 1
is clamped to 1 (the answer broke the asked range; no scale is guessed). Numbers inside range phrases
("between 0 and 1", "scale of 0 to 10") are never taken as scores.
Names match case-insensitively with spaces, hyphens or underscores between words; "empathic pain"
also matches the paper prompt's "emphatic pain" spelling.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_NUMBER = (
    r"(?<![\w.])(?P<num>\d+(?:[.,]\d+)?|[.,]\d+)(?![\d])"
    r"(?:\s*(?P<pct>%|percent\b|per\s*cent\b))?"
    r"(?:\s*(?:/|out\s+of)\s*(?P<den>\d+(?:\.\d+)?))?"
)
NUMBER_RE = re.compile(_NUMBER, re.IGNORECASE)
_BINDERS = r"(?:for|on|in|to|towards|regarding)"


def _name_pattern(emotion: str) -> str:
    """Regex for an emotion name: words joined by optional space/hyphen/underscore."""
    words = [w for w in re.split(r"[\s_\-]+", emotion.strip().lower()) if w]
    alts = []
    for w in words:
        if w == "empathic":  # the paper's prompt says "emphatic pain"
            alts.append("(?:empathic|emphatic)")
        else:
            alts.append(re.escape(w))
    return r"[\s_\-]*".join(alts)


_SCALE_RE = re.compile(
    r"(?:scale|range)\s+(?:of|from)\s+(?:0|zero)\s*(?:-|to|and)\s*(?P<a>10|100)\b"
    r"|(?:\(|\b)0\s*-\s*(?P<b>10|100)\s*(?:scale|\))", re.IGNORECASE)


_RANGE_RE = re.compile(
    r"(?:between|from)\s+0(?:\.0+)?\s+(?:and|to)\s+(?:1|10|100)(?:\.0+)?\b"
    r"|(?:scale|range)\s+(?:of\s+|from\s+)?(?:0|zero)(?:\.0+)?\s*(?:-|to|and)\s*(?:1|10|100)(?:\.0+)?\b"
    r"|\b0(?:\.0+)?\s*-\s*(?:1|10|100)(?:\.0+)?\s*(?:scale|range)", re.IGNORECASE)


def _range_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _RANGE_RE.finditer(text)]


def _stated_scale(text: str) -> float:
    """The answer's own scale when it states one ("on a scale of 0 to 10"), else 1."""
    m = _SCALE_RE.search(text)
    return float(m.group("a") or m.group("b")) if m else 1.0


def _to_score(m: re.Match, scale: float = 1.0) -> float:
    num = m.group("num").replace(",", ".")
    if num.startswith("."):
        num = "0" + num
    value = float(num)
    if m.group("den"):
        den = float(m.group("den"))
        value = value / den if den > 0 else float("nan")
    elif m.group("pct"):
        value = value / 100.0
    else:
        value = value / scale
    if value != value:  # NaN stays NaN (a zero denominator)
        return value
    return float(min(max(value, 0.0), 1.0))


def parse_scores(text: str, emotions: Sequence[str]) -> np.ndarray:
    """Scores in [0, 1] for `emotions` found in `text` (float32[E], NaN where absent)."""
    out = np.full(len(emotions), np.nan, np.float32)
    if not isinstance(text, str) or not emotions:
        return out
    text = text.replace("**", " ").replace("__", " ")  # markdown emphasis around names or numbers
    patterns = [_name_pattern(e) for e in emotions]
    mentions = []  # (start, end, emotion index), in text order
    for i, p in enumerate(patterns):
        if not p:
            continue
        for m in re.finditer(rf"(?<![a-z]){p}(?![a-z])", text, re.IGNORECASE):
            mentions.append((m.start(), m.end(), i))
    mentions.sort()
    if not mentions:
        return out

    scale = _stated_scale(text)
    any_name = "|".join(f"(?:{p})" for p in patterns if p)
    bound_after = re.compile(rf"\s*{_BINDERS}\s+(?:the\s+)?(?:emotion\s+(?:of\s+)?)?(?:{any_name})(?![a-z])",
                             re.IGNORECASE)
    ranges = _range_spans(text)
    consumed: set[int] = set()  # start offsets of numbers already bound to an emotion
    # 1. "<number> for <emotion>": the number is bound to the name after it.
    for start, _, i in mentions:
        before = text[max(0, start - 40):start]
        m = re.search(rf"{_NUMBER}\s*{_BINDERS}\s+(?:the\s+)?(?:emotion\s+(?:of\s+)?)?$", before, re.IGNORECASE)
        if m and np.isnan(out[i]):
            out[i] = _to_score(m, scale)
            consumed.add(max(0, start - 40) + m.start("num"))

    # 2. The first free number after a mention, before the line ends or another emotion is named.
    for k, (start, end, i) in enumerate(mentions):
        if not np.isnan(out[i]):
            continue
        stop = mentions[k + 1][0] if k + 1 < len(mentions) else len(text)
        newline = text.find("\n", end)
        if newline != -1:
            stop = min(stop, newline)
        for m in NUMBER_RE.finditer(text, end, stop):
            if m.start("num") in consumed or any(a <= m.start() < b for a, b in ranges):
                continue
            if bound_after.match(text, m.end()):
                break  # "0.3 for <other emotion>" belongs to the other emotion
            out[i] = _to_score(m, scale)
            consumed.add(m.start("num"))
            break
    return out
