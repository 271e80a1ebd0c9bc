"""Draws the moving cartoon face whose expression follows the clip's Expression.

The face is drawn with Pillow at twice the output size and box-downsampled, so sub-pixel changes of
brows, lids and lips still change the pixels. Per-clip nuisance (FaceStyle: position, size, skin,
background gradient, lighting) keeps the mapping from labels to pixels far from linear.
What moves with which action unit (AU, normalised a = AU / 5):
  brows   inner end up with AU01, outer end up with AU02, both down and together with AU04
  eyes    opening up with AU05, down with AU06/AU07/AU43 and blinks
  nose    wrinkle lines with AU09
  mouth   corners up with AU12 (and AU14), down with AU15; wider with AU20/AU12, narrower with
          AU23/AU24/AU28; open with AU25/AU26; upper lip up with AU10/AU11, lower lip up with AU17
plus the non-AU channels: head jitter, cheek blush, a tear under the eye, greenish pallor, a brighter
face (glow).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from tfds_hume.synthetic.expression import AU_NAMES, CHANNELS, Expression

SUPERSAMPLE = 2
_A = {name[:4]: i for i, name in enumerate(AU_NAMES)}
_C = {name: i for i, name in enumerate(CHANNELS)}


@dataclasses.dataclass(frozen=True)
class FaceStyle:
    """Per-clip appearance nuisance; lengths are fractions of the frame height."""

    center: tuple[float, float]  # (x, y) of the face centre, fraction of (width, height)
    radius: float  # face half-width
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]  # gradient end colours
    gradient_angle: float  # radians
    light: float  # overall brightness multiplier


def sample_style(rng: np.random.Generator) -> FaceStyle:
    skins = np.array([[241, 194, 167], [224, 172, 138], [198, 134, 96], [141, 85, 56], [92, 58, 38]], float)
    skin = skins[rng.integers(len(skins))] * rng.uniform(0.92, 1.08, 3)
    hairs = np.array([[25, 20, 18], [70, 45, 30], [120, 80, 45], [190, 150, 90], [150, 60, 30], [160, 160, 160]], float)
    hair = hairs[rng.integers(len(hairs))] * rng.uniform(0.85, 1.15)
    bg = rng.uniform(60, 200, (2, 3))
    return FaceStyle(
        center=(float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.47, 0.55))),
        radius=float(rng.uniform(0.29, 0.33)),
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)),
        hair=tuple(int(v) for v in np.clip(hair, 0, 255)),
        background=tuple(tuple(int(v) for v in row) for row in bg),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        light=float(rng.uniform(0.8, 1.15)),
    )


def _background(style: FaceStyle, width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    proj = (x / width - 0.5) * np.cos(style.gradient_angle) + (y / height - 0.5) * np.sin(style.gradient_angle)
    w = np.clip(proj + 0.5, 0.0, 1.0)[..., None]
    c0, c1 = (np.asarray(c, np.float64) for c in style.background)
    img = (1 - w) * c0 + w * c1
    return Image.fromarray(np.clip(img * style.light, 0, 255).astype(np.uint8), "RGB")


def _shade(color, light: float, alpha: int | None = None):
    rgb = tuple(int(min(255, max(0, c * light))) for c in color)
    return rgb if alpha is None else rgb + (int(alpha),)


def _draw_face(draw: ImageDraw.ImageDraw, style: FaceStyle, cx: float, cy: float, r: float,
               au: np.ndarray, ch: np.ndarray, blink: float) -> None:
    a = {k: au[i] / 5.0 for k, i in _A.items()}
    L = style.light
    pallor = ch[_C["pallor"]]
    skin = np.asarray(style.skin, float) * (1 - 0.5 * pallor) + np.array([150.0, 190.0, 110.0]) * 0.5 * pallor
    skin = skin * (1 + 0.3 * ch[_C["glow"]])
    ry = 1.25 * r
    # Hair cap, then the face.
    draw.ellipse([cx - 1.08 * r, cy - 1.12 * ry, cx + 1.08 * r, cy + 0.4 * ry], fill=_shade(style.hair, L))
    draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=_shade(skin, L))

    blush = ch[_C["blush"]]
    if blush > 0.01:
        for sx in (-1, 1):
            x0 = cx + sx * 0.5 * r
            draw.ellipse([x0 - 0.26 * r, cy + 0.05 * r, x0 + 0.26 * r, cy + 0.35 * r],
                         fill=_shade((235, 60, 100), L, 220 * blush))

    eye_y = cy - 0.15 * r
    openness = 1.0 + 1.1 * a["AU05"] - 0.5 * a["AU06"] - 0.5 * a["AU07"] - 0.9 * a["AU43"]
    eye_h = max(0.0, 0.09 * r * openness * (1.0 - blink))
    dark = _shade((30, 25, 25), L)
    for sx in (-1, 1):
        ex = cx + sx * 0.38 * r
        if eye_h > 0.015 * r:
            draw.ellipse([ex - 0.16 * r, eye_y - eye_h, ex + 0.16 * r, eye_y + eye_h], fill=_shade((245, 245, 240), L))
            pr = min(eye_h, 0.065 * r)
            draw.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=dark)
        else:
            draw.line([ex - 0.16 * r, eye_y, ex + 0.16 * r, eye_y], fill=dark, width=max(1, int(0.03 * r)))
        # Brows: inner end near the nose.
        base = cy - 0.4 * r
        inner = (cx + sx * (0.14 - 0.05 * a["AU04"]) * r, base - (0.3 * a["AU01"] - 0.16 * a["AU04"]) * r)
        outer = (cx + sx * 0.56 * r, base - (0.3 * a["AU02"] - 0.06 * a["AU04"]) * r)
        draw.line([inner, outer], fill=_shade(style.hair, 0.6 * L), width=max(1, int(0.07 * r)))

    tear = ch[_C["tear"]]
    if tear > 0.01:
        tx, ty = cx + 0.42 * r, eye_y + 0.2 * r
        draw.ellipse([tx - 0.05 * r, ty - 0.07 * r, tx + 0.05 * r, ty + 0.07 * r],
                     fill=_shade((90, 150, 255), L, 230 * tear))

    nose = _shade(skin, 0.7 * L)
    draw.line([cx, cy - 0.02 * r, cx - 0.05 * r, cy + 0.22 * r, cx + 0.04 * r, cy + 0.24 * r],
              fill=nose, width=max(1, int(0.03 * r)))
    wrinkles = int(round(3 * a["AU09"]))
    for k in range(wrinkles):
        wy = cy - 0.02 * r + k * 0.06 * r
        draw.line([cx - 0.1 * r, wy, cx + 0.1 * r, wy], fill=_shade(skin, 0.55 * L), width=max(1, int(0.025 * r)))

    # Mouth: u in [-1, 1] across; corners at lift, centres at +-opening/2.
    my = cy + 0.55 * r
    tight = max(a["AU23"], a["AU24"], a["AU28"])
    half_w = 0.3 * r * (1 + 0.4 * a["AU20"] + 0.25 * a["AU12"] + 0.1 * a["AU14"] - 0.35 * tight)
    lift = r * (0.22 * a["AU12"] + 0.05 * a["AU14"] - 0.2 * a["AU15"] - 0.05 * a["AU20"])
    opening = r * (0.08 * a["AU25"] + 0.3 * a["AU26"])
    upper_raise = r * (0.1 * a["AU10"] + 0.04 * a["AU11"])
    lower_raise = r * 0.08 * a["AU17"]
    u = np.linspace(-1.0, 1.0, 13)
    bend = 1.0 - u**2
    xs = cx + half_w * u
    upper = my - lift * u**2 - (opening / 2 + upper_raise) * bend
    lower = my - lift * u**2 + (opening / 2 - lower_raise) * bend
    lips = _shade((170, 60, 70), L)
    if np.max(lower - upper) > 0.02 * r:
        poly = list(zip(xs, upper)) + list(zip(xs[::-1], lower[::-1]))
        draw.polygon(poly, fill=_shade((70, 15, 25), L))
        if a["AU25"] + a["AU26"] > 0.3:  # teeth show when the mouth is clearly open
            draw.line(list(zip(xs[3:-3], upper[3:-3] + 0.03 * r)), fill=_shade((235, 235, 225), L),
                      width=max(1, int(0.05 * r)))
    lip_w = max(1, int(0.06 * r * (1 - 0.6 * tight)))
    draw.line(list(zip(xs, upper)), fill=lips, width=lip_w)
    draw.line(list(zip(xs, lower)), fill=lips, width=lip_w)


def render_frames(expr: Expression, style: FaceStyle, times: np.ndarray, width: int, height: int):
    """Yields uint8[height, width, 3] RGB frames at the given times (seconds)."""
    times = np.asarray(times, dtype=np.float64)
    big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    bg = _background(style, big_w, big_h)
    aus, chans = expr.action_units(times), expr.channels(times)
    blinks, offsets = expr.blink(times), expr.head_offset(times)
    r = style.radius * big_h
    for k in range(len(times)):
        img = bg.copy()
        draw = ImageDraw.Draw(img, "RGBA")
        cx = style.center[0] * big_w + offsets[k, 0] * r
        cy = style.center[1] * big_h + offsets[k, 1] * r
        _draw_face(draw, style, cx, cy, r, aus[k], chans[k], float(blinks[k]))
        yield np.asarray(img.reduce(SUPERSAMPLE))
