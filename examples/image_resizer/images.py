"""The resize itself, on bytes in memory: decode, turn upright, fit, encode. No files, no broker.

Everything here works on bytes already read, so a failure is the image's and happens again on
every try: it is `Permanent` (dead-lettered at once with the reason). Memory running out is not.

- Fit: the image is scaled to the largest size inside width x height that keeps its aspect
  ratio, up or down (the asked size is the box the picture should fill, as a thumbnail grid or
  a preview wants); `keep_aspect: false` stretches it to exactly width x height.
- Formats: what this Pillow reads (JPEG, PNG, GIF, WebP when built with it, and others); an
  animated GIF or WebP gives its first frame. The output's format follows its file suffix,
  or the input's format when the name has none.
- Upright: a photo's EXIF orientation is applied first (ImageOps.exif_transpose), so the box
  fits the picture as it is shown.
- Bounds: an input over Pillow's `Image.MAX_IMAGE_PIXELS` (a decompression bomb) is refused
  before it is decoded, and so is a result over the same number of pixels (65535 x 65535 is
  within the schema, and 16 GiB of RGBA).
- JPEG has no alpha: a transparent picture is laid on white, other modes become RGB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageOps, UnidentifiedImageError

from routing.worker import Permanent

__all__ = ["Resized", "fit", "output_format", "resize"]

_JPEG_MODES = ("RGB", "L", "CMYK")
_RESAMPLE = Image.Resampling.LANCZOS


@dataclass(frozen=True, slots=True)
class Resized:
    data: bytes
    width: int
    height: int
    format: str  # Pillow's name: "JPEG", "PNG", "GIF", "WEBP"


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size inside `box` with the aspect ratio of `size` (never a side of 0)."""
    (w, h), (bw, bh) = size, box
    if w * bh >= h * bw:  # wider than the box, relatively: the width binds
        return bw, max(1, min(bh, round(h * bw / w)))
    return max(1, min(bw, round(w * bh / h))), bh


def output_format(name: str, source_format: str | None) -> str:
    """The format to write `name` in: its suffix's, or the source's when it has no suffix."""
    suffix = PurePath(name).suffix.lower()
    if not suffix:
        if source_format is None:
            raise Permanent(f"output {name!r} has no suffix and the input's format is unknown")
        return source_format
    Image.init()  # every plugin, so that every suffix Pillow knows is registered
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise Permanent(f"cannot write {suffix} files (output {name!r}): use .jpg, .png, .gif or .webp")
    return fmt


def resize(data: bytes, *, width: int, height: int, keep_aspect: bool = True, name: str) -> Resized:
    """`data` decoded and resized to fit `width` x `height`, encoded for the file `name`."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Permanent(f"refused, a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise Permanent("not an image this Pillow can read (JPEG, PNG, GIF, WebP, ...)") from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's plugins raise what they like for a broken header
        raise Permanent(f"cannot read the image: {type(exc).__name__}: {exc}") from exc
    with image:
        source = image.format
        if limit is not None and image.width * image.height > limit:
            raise Permanent(
                f"refused, a decompression bomb: {image.width}x{image.height} pixels, over {limit}"
            )
        target = (width, height)
        fmt = output_format(name, source)
        try:
            image.seek(0)  # an animation's first frame
            upright = ImageOps.exif_transpose(image)
            if upright.mode in ("1", "P"):  # Pillow resizes these by nearest pixel: blocky
                upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
            if keep_aspect:
                target = fit(upright.size, target)
            if limit is not None and target[0] * target[1] > limit:
                raise Permanent(f"refused: the result would be {target[0]}x{target[1]} pixels, over {limit}")
            resized = upright.resize(target, _RESAMPLE, reducing_gap=3.0)
            buffer = io.BytesIO()
            _for_format(resized, fmt).save(buffer, fmt)
        except (Permanent, MemoryError):
            raise
        except Exception as exc:  # a truncated or corrupt body shows when it is decoded
            raise Permanent(f"cannot resize the {source} image: {type(exc).__name__}: {exc}") from exc
    return Resized(buffer.getvalue(), resized.width, resized.height, fmt)


def _for_format(image: Image.Image, fmt: str) -> Image.Image:
    """`image` in a mode `fmt` can store."""
    if fmt == "JPEG" and image.mode not in _JPEG_MODES:
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGB", rgba.size, "white")
            white.paste(rgba, mask=rgba.getchannel("A"))
            return white
        return image.convert("RGB")
    if fmt != "JPEG" and image.mode == "CMYK":  # PNG, GIF and WebP have no CMYK
        return image.convert("RGB")
    return image
