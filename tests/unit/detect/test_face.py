"""Face detector: the demo talent's portrait under transformations is identified; small faces are
reported as unidentifiable; images without a face give nothing; distances map to match/review/none."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from gateway.content import Inputs, MediaItem
from gateway.detect import media_face
from gateway.detect.face import FaceDetector
from gateway.detect.media_face import FaceBox, FaceModel, FaceSearch, model_files
from gateway.errors import ConfigError, UninspectableError
from gateway.registry import FaceBank

# media_samples is shared with tests/unit/registry (one index per test session)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
import media_samples as ms

TALENT = "eileen-collins"

PORTRAIT_TRANSFORMS = [
    "identity", "jpeg_q30", "jpeg_q10", "upscale_150", "crop_center_10", "crop_center_25", "crop_side_15",
    "rotate_5", "rotate_15_expand", "rotate_90", "mirror", "border", "grayscale", "blur", "screenshot",
    "collage_tile", "negative", "rotate_45_expand", "rotate_135_expand", "stretch_wide_150", "stretch_tall_200",
]


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


@pytest.fixture(scope="module")
def detector(model: FaceModel) -> FaceDetector:
    return FaceDetector(ms.demo_index().faces, model=model)


@pytest.fixture(scope="module")
def reference(model: FaceModel) -> np.ndarray:
    search = model.find(ms.portrait())
    return model.embed(np.asarray(search.image), search.boxes[0])


@pytest.mark.parametrize("transform", PORTRAIT_TRANSFORMS)
def test_transformed_portrait_is_identified(detector: FaceDetector, transform: str) -> None:
    """Recompressed, resized, cropped, rotated, mirrored, bordered, grey, blurred, screenshotted or
    collaged: the registered talent's face is found and matched (distance ≤ 0.50 → score ≥ 0.5)."""
    findings = detector.detect(ms.image_inputs(ms.TRANSFORMS[transform](ms.portrait())), ms.CONTEXT)
    assert [(f.kind, f.entity) for f in findings] == [("face", TALENT)]
    assert findings[0].score >= 0.5
    assert findings[0].detail.endswith(", match")


@pytest.mark.parametrize("factor", [0.25, 0.4])
def test_small_face_is_unidentifiable_not_passed(detector: FaceDetector, factor: float) -> None:
    """A face under 80 px is reported as `face_unidentifiable` (never silently passed)."""
    [finding] = detector.detect(ms.image_inputs(ms.scaled(ms.portrait(), factor)), ms.CONTEXT)
    assert (finding.kind, finding.entity) == ("face_unidentifiable", "")
    assert finding.detail.startswith("frame 0, face ") and finding.detail.endswith("px")


def test_min_face_size_is_a_setting(model: FaceModel) -> None:
    """Lowering `min_face_px` lets the detector try to identify a smaller face."""
    strict = FaceDetector(ms.demo_index().faces, model=model, min_face_px=200)
    [finding] = strict.detect(ms.image_inputs(ms.portrait()), ms.CONTEXT)
    assert finding.kind == "face_unidentifiable"


@pytest.mark.parametrize(
    "negative", ["poster_0", "poster_1", "noise_0", "photo_0", "document", "flat_grey"]
)
def test_images_without_faces_give_nothing(detector: FaceDetector, negative: str) -> None:
    assert detector.detect(ms.image_inputs(ms.NEGATIVES[negative]()), ms.CONTEXT) == []


@pytest.mark.parametrize(
    ("offset", "kind", "verdict"),
    [
        (0.00, "face", "match"),
        (0.45, "face", "match"),
        (0.55, "face", "review"),
        (0.70, None, None),
        (1.00, None, None),
    ],
)
def test_distance_bands(model: FaceModel, reference: np.ndarray, offset: float, kind: str | None,
                        verdict: str | None) -> None:
    """A bank whose only photo sits `offset` away from the probe's face: ≤0.50 match, ≤0.60 review,
    farther is another person (no finding). Score = 1 − distance."""
    direction = np.random.default_rng(0).normal(size=128)
    shifted = reference + offset * direction / np.linalg.norm(direction)
    bank = FaceBank(["someone"], shifted.reshape(1, -1))
    findings = FaceDetector(bank, model=model).detect(ms.image_inputs(ms.portrait()), ms.CONTEXT)
    if kind is None:
        assert findings == []
        return
    [finding] = findings
    assert (finding.kind, finding.entity) == (kind, "someone")
    assert finding.score == pytest.approx(1 - offset, abs=0.03)
    assert finding.detail.endswith(verdict or "")


def test_nearest_talent_wins(model: FaceModel, reference: np.ndarray) -> None:
    """Two talents near the face: only the nearest is reported."""
    direction = np.eye(128)[0]
    bank = FaceBank(["far", "near"], np.stack([reference + 0.4 * direction, reference + 0.1 * direction]))
    findings = FaceDetector(bank, model=model).detect(ms.image_inputs(ms.portrait()), ms.CONTEXT)
    assert [f.entity for f in findings] == ["near"]


class _ScriptedModel:
    """A FaceModel whose views the test scripts: each view holds one face whose identity is the
    view's colour (talent: white, stranger: black); `upright` None means no face upright (then
    `find` has already tried every other view itself)."""

    COLOURS = {"talent": (255, 255, 255), "stranger": (0, 0, 0)}

    def __init__(self, reference: np.ndarray, upright: str | None, turned: list[str | None]) -> None:
        self.reference, self.upright, self.turns, self.turned_calls = reference, upright, turned, 0

    def find(self, image: Image.Image, **_: object) -> FaceSearch:
        if self.upright is None:
            return FaceSearch(image, [], upright=True)
        return self._view(self.upright, upright=True)

    def turned(self, image: Image.Image, **_: object) -> Iterator[FaceSearch]:
        self.turned_calls += 1
        yield from (self._view(who, upright=False) for who in self.turns if who is not None)

    def embed(self, pixels: np.ndarray, face: FaceBox) -> np.ndarray:
        talent = bool(pixels[0, 0, 0])
        return self.reference if talent else self.reference + 3.0 * np.eye(128)[0]

    def _view(self, who: str, *, upright: bool) -> FaceSearch:
        return FaceSearch(Image.new("RGB", (200, 200), self.COLOURS[who]), [FaceBox(0, 0, 120, 120)], upright=upright)


@pytest.mark.parametrize(
    ("upright", "turned", "found", "turns_searched"),
    [
        pytest.param("stranger", [None, "talent"], [("face", TALENT)], True, id="decoy upright, talent turned"),
        pytest.param("talent", ["talent"], [("face", TALENT)], False, id="talent upright: no turn searched"),
        pytest.param("stranger", [None, None], [], True, id="only a stranger anywhere"),
        pytest.param(None, ["talent"], [], False, id="no face upright: find's own views decided"),
    ],
)
def test_the_search_goes_on_past_faces_that_are_not_talent(
    reference: np.ndarray, upright: str | None, turned: list[str | None], found: list, turns_searched: bool
) -> None:
    """A stranger's face upright does not end the search: the right-angle turns are searched for
    registered talent too (a decoy beside a talent's face turned on its side)."""
    scripted = _ScriptedModel(reference, upright, turned)
    detector = FaceDetector(ms.demo_index().faces, model=scripted)  # type: ignore[arg-type]
    assert [(f.kind, f.entity) for f in detector.faces_in(ms.portrait())] == found
    assert (scripted.turned_calls > 0) is turns_searched


def test_too_many_faces_are_not_passed(model: FaceModel) -> None:
    """Past `max_faces` in one frame, the rest are reported as unidentifiable."""
    detector = FaceDetector(ms.demo_index().faces, model=model, max_faces=0)
    [finding] = detector.detect(ms.image_inputs(ms.portrait()), ms.CONTEXT)
    assert finding.kind == "face_unidentifiable"
    assert "over 0" in finding.detail


def test_video_frames_are_checked(detector: FaceDetector) -> None:
    """A video that shows the talent after other footage is caught."""
    frames = [ms.smooth_photo(1)] * 4 + [ms.portrait()] * 4
    findings = detector.detect(ms.media_inputs(ms.video_bytes(frames), "video", "video/mp4"), ms.CONTEXT)
    assert [(f.kind, f.entity) for f in findings] == [("face", TALENT)]


def test_empty_bank_skips_detection(model: FaceModel) -> None:
    detector = FaceDetector(FaceBank([], np.zeros((0, 128), np.float32)), model=model)
    assert detector.detect(ms.image_inputs(ms.portrait()), ms.CONTEXT) == []


def test_dlib_failure_becomes_gateway_error(monkeypatch: pytest.MonkeyPatch, detector: FaceDetector) -> None:
    """dlib raising inside the matcher → UninspectableError with the item's location."""

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unsupported image type")

    monkeypatch.setattr(detector.model, "find", explode)
    with pytest.raises(UninspectableError) as caught:
        detector.detect(ms.image_inputs(ms.portrait()), ms.CONTEXT)
    assert caught.value.location == "form.file[0]"


def test_undecodable_image_is_a_gateway_error(detector: FaceDetector) -> None:
    item = MediaItem(b"GIF89a broken", "image", "image/gif", "image/gif", "form.file[0]")
    with pytest.raises(UninspectableError):
        detector.detect(Inputs(media=(item,)), ms.CONTEXT)


def test_only_the_five_point_model_is_used() -> None:
    """The 68-point landmark model (non-commercial licence) is never referenced."""
    names = [path.name for path in model_files()]
    assert names == ["shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"]
    source = Path(__file__).resolve().parents[3] / "gateway" / "detect" / "media_face.py"
    assert "68_face_landmarks" not in source.read_text()


def test_grayscale_mode_images_are_handled(detector: FaceDetector) -> None:
    """An 'L' mode image is decoded to RGB by the content decoder and matched."""
    grey = ms.portrait().convert("L")
    findings = detector.detect(ms.image_inputs(Image.merge("RGB", (grey, grey, grey))), ms.CONTEXT)
    assert [f.entity for f in findings] == [TALENT]


def _heads(*placements: tuple[float, tuple[int, int]]) -> Image.Image:
    """The talent's head (scale 1 → a face of ~90 px) pasted at each (scale, position) on a 1000×700 canvas."""
    head = ms.portrait().crop((110, 10, 340, 250))
    canvas = Image.new("RGB", (1000, 700), (200, 205, 210))
    for scale, position in placements:
        canvas.paste(ms.scaled(head, scale), position)
    return canvas


def test_small_face_beside_a_large_one_is_found(model: FaceModel) -> None:
    """A ~100 px face beside a ~260 px one: both are found. A first pass at ≤512 px finds only the
    large one (the small one is too small there), so it must never be the only pass when it finds a face."""
    sizes = sorted(box.size for box in model.find(_heads((2.9, (20, 20)), (1.05, (700, 300)))).boxes)
    assert len(sizes) == 2
    assert 80 <= sizes[0] < 140 <= sizes[1]


def test_face_only_the_full_resolution_pass_finds_is_identified(detector: FaceDetector) -> None:
    """A ~100 px face in a 1000 px image (too small for a ≤512 px pass) is found and matched."""
    findings = detector.detect(ms.image_inputs(_heads((1.05, (600, 250)))), ms.CONTEXT)
    assert [(f.kind, f.entity) for f in findings] == [("face", TALENT)]


@pytest.fixture(scope="module")
def dlib_models() -> tuple[dlib.shape_predictor, dlib.face_recognition_model_v1]:
    landmarks, encoder = model_files()
    return dlib.shape_predictor(str(landmarks)), dlib.face_recognition_model_v1(str(encoder))


@pytest.mark.parametrize("transform", ["identity", "grayscale", "rotate_15_expand", "mirror", "blur", "jpeg_q10"])
def test_numpy_encoder_gives_dlibs_embedding(
    model: FaceModel, dlib_models: tuple[dlib.shape_predictor, dlib.face_recognition_model_v1], transform: str
) -> None:
    """The ResNet run in numpy gives dlib's own `compute_face_descriptor` vector (to float rounding),
    so stored reference embeddings and the 0.50/0.60 thresholds keep their meaning."""
    landmarks, encoder = dlib_models
    search = model.find(ms.TRANSFORMS[transform](ms.portrait()))
    pixels, box = np.asarray(search.image), search.boxes[0]
    shape = landmarks(pixels, dlib.rectangle(box.left, box.top, box.right, box.bottom))
    expected = np.asarray(encoder.compute_face_descriptor(pixels, shape, 0), np.float32)
    embedding = model.embed(pixels, box)
    assert embedding.shape == (128,)
    assert embedding.dtype == np.float32
    assert np.abs(embedding - expected).max() < 1e-4


@pytest.mark.parametrize("damage", ["truncated", "another network", "not a model"])
def test_unexpected_encoder_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   damage: str) -> None:
    """The encoder file must be exactly dlib's face ResNet v1: cut short, another dlib network (the
    MMOD face detector in the same package) or junk is refused at load, never half-read."""
    landmarks, encoder = model_files()
    data = {
        "truncated": lambda: encoder.read_bytes()[: encoder.stat().st_size // 2],
        "another network": lambda: (encoder.parent / "mmod_human_face_detector.dat").read_bytes(),
        "not a model": lambda: bytes(range(256)) * 64,
    }[damage]()
    path = tmp_path / encoder.name
    path.write_bytes(data)
    monkeypatch.setattr(media_face, "model_files", lambda: (landmarks, path))
    with pytest.raises(ConfigError, match="not dlib's face ResNet"):
        FaceModel()
