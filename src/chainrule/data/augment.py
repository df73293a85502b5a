"""Image augmentation for flattened 2-D images: random affine warps and integer shifts.

Images are rows of ``X`` (shape (N, H * W)) together with ``image_shape = (H, W)``.
Pixels outside the source image read as 0 (the background of MNIST-like data
scaled to [0, 1]; for standardised data, augment before standardising).
"""

from __future__ import annotations

import numpy as np

__all__ = ["augment_images", "shift_images"]

_CHUNK = 1024  # images warped at once: bounds the temporaries to a few MB


def _as_images(X: np.ndarray, image_shape: tuple[int, int], who: str) -> np.ndarray:
    X = np.asarray(X)
    if len(image_shape) != 2:
        raise ValueError(f"{who}: image_shape must be (H, W), got {image_shape!r}")
    h, w = (int(s) for s in image_shape)
    if X.ndim != 2 or X.shape[1] != h * w:
        raise ValueError(
            f"{who}: X must have shape (N, {h * w}) for image_shape {(h, w)}, got {X.shape}"
        )
    return X


def shift_images(X: np.ndarray, image_shape: tuple[int, int], dx: int, dy: int) -> np.ndarray:
    """Shift every image by whole pixels, filling the uncovered border with 0.

    Parameters
    ----------
    X : numpy.ndarray
        Flattened images, shape (N, H * W).
    image_shape : tuple of int
        ``(H, W)``.
    dx, dy : int
        Shift to the right (columns) and down (rows); negative values shift
        left and up. Pixels shifted past the edge are lost.

    Returns
    -------
    numpy.ndarray
        Shifted images, same shape and dtype as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import shift_images
    >>> img = np.arange(1, 10).reshape(1, 9)
    >>> shift_images(img, (3, 3), dx=1, dy=0).reshape(3, 3)
    array([[0, 1, 2],
           [0, 4, 5],
           [0, 7, 8]])
    """
    X = _as_images(X, image_shape, "shift_images")
    if int(dx) != dx or int(dy) != dy:
        raise ValueError(f"shift_images: dx and dy must be integers, got {dx!r}, {dy!r}")
    h, w = image_shape
    dx, dy = int(dx), int(dy)
    imgs = X.reshape(-1, h, w)
    out = np.zeros_like(imgs)
    if abs(dx) < w and abs(dy) < h:
        dst_r = slice(max(dy, 0), h + min(dy, 0))
        dst_c = slice(max(dx, 0), w + min(dx, 0))
        src_r = slice(max(-dy, 0), h + min(-dy, 0))
        src_c = slice(max(-dx, 0), w + min(-dx, 0))
        out[:, dst_r, dst_c] = imgs[:, src_r, src_c]
    return out.reshape(X.shape)


def _warp_chunk(
    imgs: np.ndarray, theta: np.ndarray, scale: np.ndarray, tx: np.ndarray, ty: np.ndarray
) -> np.ndarray:
    """Bilinear warp of ``imgs`` (B, H, W); each output pixel samples its inverse image."""
    b, h, w = imgs.shape
    padded = np.zeros((b, h + 2, w + 2), dtype=imgs.dtype)
    padded[:, 1:-1, 1:-1] = imgs
    padded = padded.reshape(b, -1)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = np.divmod(np.arange(h * w), w)
    u = cols - cx - tx[:, None]
    v = rows - cy - ty[:, None]
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    # Inverse map: source = R(-theta) (target - centre - shift) / scale + centre.
    xs = (cos * u + sin * v) / scale[:, None] + cx
    ys = (cos * v - sin * u) / scale[:, None] + cy
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    # Indices clipped to the zero border: any neighbour outside the image reads 0.
    x0i = np.clip(x0, -1, w).astype(np.intp) + 1
    x1i = np.clip(x0 + 1, -1, w).astype(np.intp) + 1
    y0i = (np.clip(y0, -1, h).astype(np.intp) + 1) * (w + 2)
    y1i = (np.clip(y0 + 1, -1, h).astype(np.intp) + 1) * (w + 2)

    def at(idx: np.ndarray) -> np.ndarray:
        return np.take_along_axis(padded, idx, axis=1)

    top = at(y0i + x0i) * (1.0 - fx) + at(y0i + x1i) * fx
    bottom = at(y1i + x0i) * (1.0 - fx) + at(y1i + x1i) * fx
    return top * (1.0 - fy) + bottom * fy


def augment_images(
    X: np.ndarray,
    image_shape: tuple[int, int],
    rng: np.random.Generator | int | None,
    *,
    max_shift: float = 2,
    max_rotation: float = 15.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> np.ndarray:
    """Apply a random affine warp (shift, rotation, scaling) to every image.

    Each image gets its own rotation angle uniform in ``[-max_rotation,
    max_rotation]`` degrees about the image centre, scale uniform in
    ``scale_range`` and shift uniform in ``[-max_shift, max_shift]`` pixels
    along each axis (sub-pixel shifts included). The warp is computed for the
    whole batch at once with bilinear interpolation; outside pixels read 0.

    Parameters
    ----------
    X : numpy.ndarray
        Flattened images, shape (N, H * W).
    image_shape : tuple of int
        ``(H, W)``.
    rng : numpy.random.Generator or int or None
        Source of the random parameters; the same generator state (or seed)
        gives the same output.
    max_shift : float
        Largest shift in pixels.
    max_rotation : float
        Largest rotation in degrees.
    scale_range : tuple of float
        ``(low, high)`` zoom factors; above 1 enlarges.

    Returns
    -------
    numpy.ndarray
        Warped images with the shape of ``X`` and its dtype (float64 for
        integer input). Zero shift, rotation and ``scale_range=(1, 1)``
        return ``X`` unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import augment_images
    >>> X = np.random.default_rng(0).random((4, 64))
    >>> out = augment_images(X, (8, 8), rng=0)
    >>> out.shape, out.dtype
    ((4, 64), dtype('float64'))
    >>> same = augment_images(X, (8, 8), 0, max_shift=0, max_rotation=0, scale_range=(1, 1))
    >>> bool(np.array_equal(same, X))
    True
    """
    X = _as_images(X, image_shape, "augment_images")
    lo, hi = scale_range
    if not 0 < lo <= hi:
        raise ValueError(
            f"augment_images: scale_range must satisfy 0 < low <= high, got {scale_range}"
        )
    if max_shift < 0 or max_rotation < 0:
        raise ValueError("augment_images: max_shift and max_rotation must be non-negative")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = len(X)
    theta = np.deg2rad(gen.uniform(-max_rotation, max_rotation, n))
    scale = gen.uniform(lo, hi, n)
    tx = gen.uniform(-max_shift, max_shift, n)
    ty = gen.uniform(-max_shift, max_shift, n)
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float64)
    h, w = image_shape
    imgs = X.reshape(n, h, w).astype(dtype, copy=False)
    out = np.empty((n, h * w), dtype=dtype)
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _warp_chunk(imgs[sl], theta[sl], scale[sl], tx[sl], ty[sl])
    return out
