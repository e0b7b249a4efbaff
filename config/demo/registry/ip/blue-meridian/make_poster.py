"""Generate poster.png: a synthetic poster for the fictional film "Blue Meridian".

The demo registers Blue Meridian as a third party's film so the gateway can show what happens when
someone uploads another studio's poster. No real poster may be committed, so this one is drawn from
scratch: a night-sky gradient, a large setting sun cut by a meridian line, concentric orbit rings,
a star field from a fixed seed, and the title. The output is deterministic for a given Pillow version.

    .venv/bin/pip install pillow   # if it is not installed
    .venv/bin/python config/demo/registry/ip/blue-meridian/make_poster.py
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 600, 900
OUT = Path(__file__).resolve().parent / "poster.png"


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: fall back to the bitmap font
        return ImageFont.load_default()


def make_poster() -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)

    # Sky: deep navy at the top to teal, then a warm band at the horizon.
    top, middle, horizon = (6, 10, 40), (14, 70, 120), (240, 150, 90)
    for y in range(HEIGHT):
        t = y / (HEIGHT - 1)
        colour = _lerp(top, middle, t / 0.6) if t < 0.6 else _lerp(middle, horizon, (t - 0.6) / 0.4)
        draw.line([(0, y), (WIDTH, y)], fill=colour)

    # Stars from a fixed seed, upper two thirds only.
    rng = random.Random(20260101)  # noqa: S311 (a fixed seed: the poster must be reproducible)
    for _ in range(220):
        x, y = rng.randrange(WIDTH), rng.randrange(int(HEIGHT * 0.62))
        r = rng.choice((0, 0, 0, 1, 1, 2))
        shade = rng.randrange(170, 256)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(shade, shade, 255))

    # Orbit rings around the sun, drawn on a separate layer and blurred into a glow.
    cx, cy = WIDTH // 2, 560
    rings = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    ring_draw = ImageDraw.Draw(rings)
    for i, radius in enumerate(range(150, 420, 45)):
        ring_draw.ellipse(
            [cx - radius, cy - radius * 0.38, cx + radius, cy + radius * 0.38],
            outline=(120, 200, 255, 200 - i * 25),
            width=3,
        )
    rings = rings.filter(ImageFilter.GaussianBlur(1.2))
    image.paste(rings, (0, 0), rings)
    draw = ImageDraw.Draw(image)

    # The sun: a radial gradient disc, cut by the blue meridian line.
    for r in range(130, 0, -2):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_lerp((255, 240, 200), (255, 90, 60), r / 130))
    draw.rectangle([cx - 4, 210, cx + 4, 780], fill=(40, 120, 255))
    draw.polygon([(cx, 185), (cx - 18, 220), (cx + 18, 220)], fill=(40, 120, 255))

    # Sea: dark stripes below the horizon, reflecting the sun.
    sea_top = 700
    draw.rectangle([0, sea_top, WIDTH, HEIGHT], fill=(8, 22, 50))
    for k, y in enumerate(range(sea_top + 8, HEIGHT - 110, 12)):
        half = 120 - k * 8
        if half > 0:
            draw.line([(cx - half, y), (cx + half, y)], fill=(250, 140, 90), width=4)

    # Title and credits.
    title_font, tag_font, credit_font = _font(64), _font(22), _font(15)
    draw.text((WIDTH // 2, 60), "BLUE MERIDIAN", font=title_font, fill=(235, 245, 255), anchor="mt")
    draw.text(
        (WIDTH // 2, 140), "Every line ends somewhere.", font=tag_font, fill=(170, 210, 255), anchor="mt"
    )
    draw.text(
        (WIDTH // 2, HEIGHT - 70), "CAPTAIN YSOLDE VARGA", font=tag_font, fill=(235, 245, 255), anchor="mt"
    )
    draw.text(
        (WIDTH // 2, HEIGHT - 35),
        "A HALCYON REACH PICTURES RELEASE  ·  SYNTHETIC DEMO POSTER",
        font=credit_font,
        fill=(150, 170, 200),
        anchor="mt",
    )
    return image


if __name__ == "__main__":
    make_poster().save(OUT, optimize=True)
    print(f"wrote {OUT}")
