"""Test media for the registry and the media detectors: transforms, negatives, synthetic voices, one shared index.

`demo_index()` builds (once per test session) the index of a copy of config/demo with one extra
talent whose voice clips are synthesised here, so every media test shares one build. Tests elsewhere
put this folder on sys.path and `import media_samples` (not `tests.unit...`: a dependency ships its
own top-level `tests` package).
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import wave
from collections.abc import Callable
from functools import cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from gateway.content import Inputs, MediaItem
from gateway.detect import DetectionContext
from gateway.registry import RegistryIndex, load_index

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo"
POSTER = DEMO / "registry" / "ip" / "blue-meridian" / "poster.png"
PORTRAIT = DEMO / "registry" / "talent" / "eileen-collins" / "reference.png"
CONTEXT = DetectionContext(capability="image_edit", production="northern-lights")
SAMPLE_RATE = 16_000

Transform = Callable[[Image.Image], Image.Image]


# --- the shared index ------------------------------------------------------------------------------


@cache
def demo_config() -> Path:
    """A copy of config/demo plus talent `voice-a` (two synthetic clips of speaker A)."""
    root = Path(tempfile.mkdtemp(prefix="greenroom-media-"))
    atexit.register(shutil.rmtree, root, True)
    config = root / "config"
    shutil.copytree(DEMO, config)
    folder = config / "registry" / "talent" / "voice-a"
    folder.mkdir(parents=True)
    for number, seed in enumerate((11, 12)):
        (folder / f"clip{number}.wav").write_bytes(wav_bytes(speech(seed, **SPEAKER_A)))
    (folder / "talent.yaml").write_text(
        "id: voice-a\nname: Voice Alpha\nvoices: [clip0.wav, clip1.wav]\n", encoding="utf-8"
    )
    return config


@cache
def demo_index() -> RegistryIndex:
    return load_index(demo_config().parent / "data", demo_config())


# --- images ----------------------------------------------------------------------------------------


def poster() -> Image.Image:
    return Image.open(POSTER).convert("RGB")


def portrait() -> Image.Image:
    return Image.open(PORTRAIT).convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def image_inputs(*images: Image.Image) -> Inputs:
    return Inputs(media=tuple(
        MediaItem(data=png_bytes(im), kind="image", sniffed_type="image/png", declared_type="image/png",
                  location=f"form.file[{n}]")
        for n, im in enumerate(images)
    ))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop_center(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * fraction / 2), int(h * fraction / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def crop_side(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * fraction), 0, w, h))


def scaled(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((max(1, int(image.width * factor)), max(1, int(image.height * factor))), Image.LANCZOS)


def overlay_text(image: Image.Image) -> Image.Image:
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    w, h = copy.size
    draw.rectangle([0, int(h * 0.45), w, int(h * 0.55)], fill=(255, 255, 255))
    draw.text((w // 10, int(h * 0.46)), "SAMPLE DRAFT", fill=(200, 0, 0), font=_font(max(12, h // 14)))
    return copy


def screenshot(image: Image.Image) -> Image.Image:
    """The image at 60 % of the height of a 1920×1080 chat window."""
    canvas = Image.new("RGB", (1920, 1080), (236, 236, 240))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, 1920, 48], fill=(40, 40, 48))
    draw.text((20, 10), "Chat - upload preview", fill="white", font=_font(24))
    draw.rectangle([0, 48, 300, 1080], fill=(250, 250, 252))
    for i in range(12):
        draw.text((20, 80 + 60 * i), f"Conversation {i}", fill=(60, 60, 60), font=_font(20))
    small = scaled(image, 0.6 * 1080 / image.height)
    canvas.paste(small, (420, 150))
    draw.text((420, 170 + small.height), "Make this into a trailer thumbnail", fill="black", font=_font(26))
    return canvas


def collage(image: Image.Image, seed: int = 3) -> Image.Image:
    """The image as one tile of a 2×2 collage of unrelated pictures."""
    tiles = [image] + [synthetic_poster(seed + n) for n in range(3)]
    canvas = Image.new("RGB", (1220, 1220), "white")
    for n, tile in enumerate(tiles):
        canvas.paste(tile.resize((600, 600)), ((n % 2) * 610 + 5, (n // 2) * 610 + 5))
    return canvas


def grayscale(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


TRANSFORMS: dict[str, Transform] = {
    "identity": lambda im: im,
    "jpeg_q30": lambda im: jpeg(im, 30),
    "jpeg_q10": lambda im: jpeg(im, 10),
    "resize_50": lambda im: scaled(im, 0.5),
    "upscale_150": lambda im: scaled(im, 1.5),
    "crop_center_10": lambda im: crop_center(im, 0.10),
    "crop_center_25": lambda im: crop_center(im, 0.25),
    "crop_side_15": lambda im: crop_side(im, 0.15),
    "rotate_5": lambda im: im.rotate(5, Image.BILINEAR),
    "rotate_15_expand": lambda im: im.rotate(15, Image.BILINEAR, expand=True, fillcolor="white"),
    "rotate_90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "mirror": ImageOps.mirror,
    "mirror_crop_10": lambda im: ImageOps.mirror(crop_center(im, 0.10)),
    "border": lambda im: ImageOps.expand(im, border=60, fill=(20, 20, 20)),
    "overlay_text": overlay_text,
    "grayscale": grayscale,
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(2)),
    "screenshot": screenshot,
    "collage_tile": collage,
    "rotate_45_expand": lambda im: im.rotate(45, Image.BILINEAR, expand=True, fillcolor="white"),
    "rotate_135_expand": lambda im: im.rotate(135, Image.BILINEAR, expand=True, fillcolor="white"),
    "stretch_wide_150": lambda im: im.resize((int(im.width * 1.5), im.height)),
    "stretch_tall_200": lambda im: im.resize((im.width, im.height * 2)),
    "negative": lambda im: ImageOps.invert(im.convert("RGB")),
    "negative_crop_3": lambda im: ImageOps.invert(crop_center(im, 0.03).convert("RGB")),
}


def synthetic_poster(seed: int, size: tuple[int, int] = (600, 900)) -> Image.Image:
    """An unrelated 'poster': gradient, circles and a title in the same font family as many posters."""
    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.linspace(0, 1, h)[:, None, None]
    top, bottom = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(w, axis=1).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h // 2)), int(rng.integers(20, 160))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    words = ["NIGHT", "HARBOR", "IRON", "TIDE", "LONG", "ROAD", "SILENT", "CROWN"]
    title = f"{words[seed % 8]} {words[(seed * 3 + 1) % 8]}"
    draw.text((40, int(h * 0.7)), title, fill="white", font=_font(h // 12))
    draw.text((40, int(h * 0.85)), "COMING SOON", fill=(230, 230, 230), font=_font(h // 28))
    return image


def noise_image(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def smooth_photo(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A photo-like image: blurred blobs of colour."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(4))


def document_page(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(page)
    words = ["the", "a", "door", "opens", "she", "looks", "at", "camera", "walks", "into", "room",
             "INT.", "EXT.", "NIGHT", "DAY", "phone", "rings"]
    for y in range(80, 1040, 34):
        line = " ".join(words[int(i)] for i in rng.integers(0, len(words), 8))
        draw.text((90, y), line, fill="black", font=_font(20))
    return page


NEGATIVES: dict[str, Callable[[], Image.Image]] = {
    **{f"poster_{n}": (lambda n=n: synthetic_poster(100 + n)) for n in range(4)},
    **{f"noise_{n}": (lambda n=n: noise_image(n)) for n in range(2)},
    **{f"photo_{n}": (lambda n=n: smooth_photo(n)) for n in range(2)},
    "document": lambda: document_page(1),
    "flat_grey": lambda: Image.new("RGB", (640, 480), (128, 128, 128)),
    "portrait": portrait,
}


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


# --- video -----------------------------------------------------------------------------------------


def video_bytes(frames: list[Image.Image], audio: np.ndarray | None = None, fps: int = 2) -> bytes:
    """An MP4 (MPEG-4 part 2 video, AAC audio when given) of the frames, one per 1/fps s."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        width, height = (d - d % 2 for d in frames[0].size)
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE) if audio is not None else None
        for frame in frames:
            picture = av.VideoFrame.from_image(frame.resize((width, height)))
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
        if sound is not None and audio is not None:
            _mux_audio(container, sound, audio)
    return buffer.getvalue()


def _mux_audio(container: av.container.OutputContainer, stream: av.AudioStream, audio: np.ndarray) -> None:
    chunk = 1024
    for start in range(0, len(audio), chunk):
        block = audio[start : start + chunk].astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def media_inputs(data: bytes, kind: str, sniffed: str) -> Inputs:
    return Inputs(media=(MediaItem(data=data, kind=kind, sniffed_type=sniffed, declared_type=sniffed,  # type: ignore[arg-type]
                                   location="form.file[0]"),))


# --- voices ----------------------------------------------------------------------------------------

_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410),
           (660, 1720, 2410), (490, 1350, 1690))
SPEAKER_A = {"f0": 110.0, "tract": 1.0, "tilt": 1.0}
SPEAKER_B = {"f0": 210.0, "tract": 1.18, "tilt": 1.4}


def speech(seed: int, f0: float, tract: float, tilt: float, seconds: float = 4.0) -> np.ndarray:
    """Synthetic 'speech' of one speaker: vowel-like syllables (harmonics of a wavering pitch shaped by
    formants scaled by the vocal tract), with pauses. The speaker is (f0, tract, tilt); the seed is the text.
    """
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * SAMPLE_RATE:
        length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        formants = _VOWELS[int(rng.integers(len(_VOWELS)))]
        t = np.arange(length) / SAMPLE_RATE
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6)))
        pitch = pitch * rng.uniform(0.9, 1.1)
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        signal = np.zeros(length)
        for k in range(1, int(7000 / f0)):
            hz = k * pitch
            gain = sum(1.0 / (1 + ((hz - f * tract) / (60 + 0.08 * f)) ** 2) for f in formants) * k**-tilt
            signal += gain * np.sin(k * phase) * (hz < 7500)
        parts.append(signal * np.sin(np.pi * np.arange(length) / length) ** 0.5)
        total += length
        if rng.random() < 0.25:
            gap = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
            parts.append(np.zeros(gap))
            total += gap
    wav = np.concatenate(parts) + rng.normal(0, 0.002, total)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
