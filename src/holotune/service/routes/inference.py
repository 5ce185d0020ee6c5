"""Holistic inference on ONNX Runtime, and the registry versions it serves (with a forced reload)."""

from __future__ import annotations

import io

import anyio
from fastapi import APIRouter, Depends, File, HTTPException, UploadFile

from holotune.service.errors import field_error
from holotune.service.middleware import INFER_PATH
from holotune.service.routes.common import BEARER
from holotune.service.state import Service, get_service

router = APIRouter(tags=["inference"], dependencies=BEARER)


@router.post(INFER_PATH)
async def infer(image: UploadFile = File(..., description="a JPEG/PNG/... image"),
                service: Service = Depends(get_service)) -> dict:
    """The 543 keypoints of one image, as `holotune infer --json` prints them, with each hand's
    gesture (`left_gesture`, `right_gesture`: `{"label", "score"}`, or `null` without a hand or a
    gesture head), plus `models`: the registry version of each part and of the gesture head that
    computed them (`null`: the stock export; for `gesture`, none served)."""
    settings = service.settings
    if service.infer_pending >= settings.max_pending_infer:  # before decoding: refuse without the work
        raise HTTPException(503, f"{service.infer_pending} inference requests already pending; retry later",
                            headers={"Retry-After": "1"})
    service.infer_pending += 1
    try:
        # Decoding (up to max_image_pixels) runs in a thread, not on the event loop, and outside
        # the inference limiter, so it overlaps the image being processed.
        rgb = await anyio.to_thread.run_sync(decode_upload, await image.read(), image.filename or "image",
                                             settings.max_image_pixels)
        result, versions = await anyio.to_thread.run_sync(service.process, rgb, limiter=service.infer_limiter)
    finally:
        service.infer_pending -= 1
    return {"image": image.filename, "width": rgb.shape[1], "height": rgb.shape[0], **result.to_dict(),
            "models": versions}


@router.get("/api/v1/models")
def models(service: Service = Depends(get_service)) -> dict:
    """Which registry version serves each part and the gesture head (`parts.gesture`), the alias
    followed, the last check's error, and the served gesture classes (`class_names`: the gesture
    head's; for `hands`, a hand model's image gesture head's)."""
    return service.follower.state()


@router.post("/api/v1/models/reload")
async def reload(service: Service = Depends(get_service)) -> dict:
    """Check the registry now; load, verify and swap every part (and the gesture head) whose alias
    moved. A part that fails keeps its old model and reports why in `error`."""
    follower = service.follower
    checked = await anyio.to_thread.run_sync(lambda: follower.check(force=True))
    return {"alias": follower.alias, "parts": checked}


def decode_upload(data: bytes, name: str, max_pixels: int):
    """An uploaded image to (H, W, 3) uint8 RGB; 422 naming ``image`` if it is not one, 413 if too large."""
    from holotune.runtime.image import ImageError, ImageTooLargeError, decode_image

    if not data:
        raise field_error("image", f"{name}: empty file")
    try:
        return decode_image(io.BytesIO(data), name, max_pixels)
    except ImageTooLargeError as exc:
        raise HTTPException(413, f"image: {exc}") from None
    except ImageError as exc:
        raise field_error("image", str(exc)) from None
