"""parse_scores on realistic chat-model answers, and properties that must hold for any string."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eri_jax.query import parse_scores

EMO = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]
N = float("nan")

CASES = [
    # (answer, expected scores in EMO order; NaN = not found)
    ("Adoration: 0.3, Amusement: 0.8, Anxiety: 0.1, Disgust: 0.0, Empathic pain: 0.2, Fear: 0.1, Surprise: 0.6",
     [0.3, 0.8, 0.1, 0.0, 0.2, 0.1, 0.6]),
    ("- Adoration: 0.2\n- Amusement: 0.7\n- Anxiety: 0.4\n- Disgust: 0.1\n- Emphatic pain: 0.3\n- Fear: 0.2\n- Surprise: 0.5",  # noqa: E501 (a model's answer, verbatim)
     [0.2, 0.7, 0.4, 0.1, 0.3, 0.2, 0.5]),
    ("1. Adoration: 0.1\n2. Amusement: 0.9\n3. Anxiety: 0.4\n4. Disgust: 0\n5. Emphatic pain: 0\n6. Fear: 0.3\n7. Surprise: 1",  # noqa: E501 (a model's answer, verbatim)
     [0.1, 0.9, 0.4, 0.0, 0.0, 0.3, 1.0]),
    ('{"adoration": 0.25, "amusement": 0.5, "anxiety": 0.4, "disgust": 0.05, "emphatic pain": 0.1, "fear": 0.2, "surprise": 0.7}',  # noqa: E501 (a model's answer, verbatim)
     [0.25, 0.5, 0.4, 0.05, 0.1, 0.2, 0.7]),
    ("adoration - 0.3, amusement - 0.6, anxiety - 0.2, disgust - 0.1, empathic pain - 0.1, fear - 0.0, surprise - 0.4",
     [0.3, 0.6, 0.2, 0.1, 0.1, 0.0, 0.4]),
    ("I would give 0.3 for adoration, 0.6 for amusement, 0.4 for anxiety, 0.1 for disgust, 0.2 for emphatic pain, 0.1 for fear and 0.5 for surprise.",  # noqa: E501 (a model's answer, verbatim)
     [0.3, 0.6, 0.4, 0.1, 0.2, 0.1, 0.5]),
    ("Adoration: 30%, Amusement: 75%, Anxiety: 40%, Disgust: 5%, Empathic pain: 10%, Fear: 20%, Surprise: 60%",
     [0.3, 0.75, 0.4, 0.05, 0.1, 0.2, 0.6]),
    ("Adoration 3/10, Amusement 8/10, Anxiety 4/10, Disgust 1/10, Empathic-Pain 2/10, Fear 2/10, Surprise 6/10",
     [0.3, 0.8, 0.4, 0.1, 0.2, 0.2, 0.6]),
    ("The subject shows adoration at about 0.2, amusement of roughly 0.9 and surprise around 0.5.",
     [0.2, 0.9, N, N, N, N, 0.5]),
    ("ADORATION: 0.4\nAMUSEMENT: 0.4\nANXIETY: 0.4\nDISGUST: 0.4\nEMPATHIC-PAIN: 0.4\nFEAR: 0.4\nSURPRISE: 0.4",
     [0.4] * 7),
    ("**Adoration**: 0.1\n**Amusement**: 0.85\n**Anxiety**: 0.3\n**Disgust**: 0.05\n**Emphatic Pain**: 0.15\n**Fear**: 0.2\n**Surprise**: 0.45",  # noqa: E501 (a model's answer, verbatim)
     [0.1, 0.85, 0.3, 0.05, 0.15, 0.2, 0.45]),
    ("Adoration = .3; Amusement = .6; Anxiety = .2; Disgust = .1; Empathic_pain = .2; Fear = .1; Surprise = .7",
     [0.3, 0.6, 0.2, 0.1, 0.2, 0.1, 0.7]),
    ("The person in the video is laughing. Amusement: 0.9. Surprise: 0.3. Other emotions are not expressed.",
     [N, 0.9, N, N, N, N, 0.3]),
    ("The video shows a man sitting in front of a camera.", [N] * 7),
    ("", [N] * 7),
    ("Can you assign a score between 0 and 1 to each of these emotions based on what is expressed by the subject "
     "in the video: adoration, amusement, anxiety, disgust, emphatic pain, fear and surprise?\n"
     "Adoration: 0.2\nAmusement: 0.6\nAnxiety: 0.4\nDisgust: 0.1\nEmphatic pain: 0.1\nFear: 0.3\nSurprise: 0.5",
     [0.2, 0.6, 0.4, 0.1, 0.1, 0.3, 0.5]),
    ("On a scale of 0 to 10: Adoration 2, Amusement 7, Anxiety 4, Disgust 1, Empathic pain 0, Fear 3, Surprise 5",
     [0.2, 0.7, 0.4, 0.1, 0.0, 0.3, 0.5]),
    ("Adoration (0-100 scale): 20, Amusement: 70, Anxiety: 40, Disgust: 10, Empathic pain: 0, Fear: 30, Surprise: 50",
     [0.2, 0.7, 0.4, 0.1, 0.0, 0.3, 0.5]),
    ("Adoration: 2.5, Amusement: 0.5", [1.0, 0.5, N, N, N, N, N]),  # out of range: clamped
    ("Adoration: -0.2", [0.2, N, N, N, N, N, N]),  # the dash is a separator, not a sign
    ("Adoration: 0,3\nAmusement: 0,7", [0.3, 0.7, N, N, N, N, N]),
    ("Amusement: 0.8\nAdoration: 0.1", [0.1, 0.8, N, N, N, N, N]),  # any order
    ("Adoration: 7 out of 10; Fear: 2 out of 10", [0.7, N, N, N, N, 0.2, N]),
    ("Adoration:\nAmusement: 0.5", [N, 0.5, N, N, N, N, N]),  # no score on the adoration line
    ("Empathic pain: 0.35 | Empathic-Pain appears low", [N, N, N, N, 0.35, N, N]),
    ("Fear: 0.2 (on a scale from 0 to 1)", [N, N, N, N, N, 0.2, N]),
    ("Fear (between 0 and 1): 0.6", [N, N, N, N, N, 0.6, N]),
    ("Scores -> adoration 0.1 amusement 0.2 anxiety 0.3 disgust 0.4 empathic pain 0.5 fear 0.6 surprise 0.7",
     [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
    ("Adoration: 0.0\nAmusement: 1.0\nAnxiety: 0.40\nDisgust: 0.00\nEmpathic Pain: 0.000\nFear: 0.10\nSurprise: 0.90",
     [0.0, 1.0, 0.4, 0.0, 0.0, 0.1, 0.9]),
    ("Surprise is the strongest emotion (0.8), followed by amusement (0.5).", [N, 0.5, N, N, N, N, 0.8]),
    ("| Emotion | Score |\n|---|---|\n| Adoration | 0.2 |\n| Amusement | 0.6 |\n| Fear | 0.1 |",
     [0.2, 0.6, N, N, N, 0.1, N]),
    ("adoration:0.3,amusement:0.4", [0.3, 0.4, N, N, N, N, N]),
    ("Anxiety: 45 percent", [N, N, 0.45, N, N, N, N]),
    ("</s> ASSISTANT: sure sure sure 12345 \x00 \ufffd", [N] * 7),  # gibberish from a random model
]


@pytest.mark.parametrize("text, expected", CASES)
def test_realistic_answers(text, expected):
    got = parse_scores(text, EMO)
    assert got.dtype == np.float32 and got.shape == (7,)
    np.testing.assert_allclose(got, np.array(expected, np.float32), atol=1e-6, equal_nan=True)


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_emotions_are_data_driven():
    got = parse_scores("Happiness: 0.9; Boredom: 0.2", ["Happiness", "Boredom", "Anger"])
    np.testing.assert_allclose(got, [0.9, 0.2, np.nan], equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises(text):
    got = parse_scores(text, EMO)
    assert got.shape == (7,)
    ok = np.isnan(got) | ((got >= 0) & (got <= 1))
    assert ok.all()


scores = st.lists(st.floats(0, 1, allow_nan=False).map(lambda v: round(v, 3)), min_size=7, max_size=7)


@settings(max_examples=100, deadline=None)
@given(scores, st.sampled_from(["{name}: {v}", "- {name} - {v}", "{v} for {name}", "{name} = {v}"]),
       st.sampled_from([", ", "\n", "; "]), st.booleans())
def test_round_trip_of_formatted_scores(values, template, sep, lower):
    names = [e.replace("-", " ") for e in EMO]
    if lower:
        names = [n.lower() for n in names]
    text = sep.join(template.format(name=n, v=v) for n, v in zip(names, values))
    np.testing.assert_allclose(parse_scores(text, EMO), values, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(scores)
def test_round_trip_json(values):
    text = json.dumps({e.lower(): v for e, v in zip(EMO, values)})
    np.testing.assert_allclose(parse_scores(text, EMO), values, atol=1e-6)
