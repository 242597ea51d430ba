"""ROAD: remove pixels and fill them in from their neighbours (Rong et al. 2022).  Lesson 8.

Deletion with a grey or blurred baseline leaves sharp-edged holes the network has never seen;
part of the probability drop then measures the holes, and a map can "win" by pointing at
pixels whose removal makes the most conspicuous holes.  ROAD (RemOve And Debias) fills each
removed pixel with the weighted mean of its 8 neighbours (weight 1/6 for the 4 direct
neighbours, 1/12 for the diagonals), the removed neighbours themselves unknowns: one sparse
linear system per image (:func:`noisy_linear_impute`), plus a little noise so that the filled
region carries no smooth, tell-tale texture.  :func:`road_curve` removes the pixels in the
order of a map, most relevant first (MoRF, a good map: low area) or least relevant first
(LeRF, a good map: high area).
"""
from __future__ import annotations

import numpy as np

from .. import _checks

#: (row offset, column offset, weight) of the 8 neighbours in Rong et al.'s imputer.
NEIGHBOURS = tuple((dy, dx, 1 / 12 if dy and dx else 1 / 6)
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def imputation_system(mask):
    """The sparse system ``A x = B`` of :func:`noisy_linear_impute` for a removal ``mask``.

    Returns ``(A, weights, unknown)``: ``A`` (k, k) CSR, for the k removed pixels in row-major
    order; ``weights`` (k, H*W) CSR, so that ``B = weights @ known values``; ``unknown`` the
    flat indices of the removed pixels.  Row i says: (sum of pixel i's neighbour weights) x_i
    - sum over removed neighbours j of w_ij x_j = sum over kept neighbours j of w_ij v_j.
    """
    import scipy.sparse as sp

    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}.")
    h, w = mask.shape
    unknown = np.flatnonzero(mask)
    k = len(unknown)
    pos = np.full(h * w, -1)
    pos[unknown] = np.arange(k)
    yy, xx = np.divmod(unknown, w)
    diag = np.zeros(k)
    a_rows, a_cols, a_vals, b_rows, b_cols, b_vals = [], [], [], [], [], []
    for dy, dx, wt in NEIGHBOURS:
        ny, nx = yy + dy, xx + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        rows = np.flatnonzero(inside)
        nbr = ny[inside] * w + nx[inside]
        diag[rows] += wt
        removed = mask.ravel()[nbr]
        a_rows.append(rows[removed])
        a_cols.append(pos[nbr[removed]])
        a_vals.append(np.full(removed.sum(), -wt))
        b_rows.append(rows[~removed])
        b_cols.append(nbr[~removed])
        b_vals.append(np.full((~removed).sum(), wt))
    a = sp.csr_matrix((np.concatenate(a_vals + [diag]),
                       (np.concatenate(a_rows + [np.arange(k)]),
                        np.concatenate(a_cols + [np.arange(k)]))), shape=(k, k))
    weights = sp.csr_matrix((np.concatenate(b_vals), (np.concatenate(b_rows),
                                                      np.concatenate(b_cols))), shape=(k, h * w))
    return a, weights, unknown


def noisy_linear_impute(image, mask, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """``image`` with the pixels where ``mask`` is True filled in from their neighbours.

    Each removed pixel becomes the weighted mean of its 8 neighbours (kept or themselves
    filled in), solved for all removed pixels at once as a sparse linear system
    (one sparse LU factorization, ``scipy.sparse.linalg.splu``, solved for every channel), then ``noise`` times
    a standard normal draw is added to the filled pixels (Rong et al. 2022's noisy linear
    imputation).  Kept pixels are unchanged.  ``image`` (H, W, C) float; ``mask`` (H, W) bool.

    Written out in lesson 08, "In plain code: noisy linear imputation".
    """
    from scipy.sparse.linalg import splu

    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {np.shape(image)}.")
    mask = np.asarray(mask)
    if mask.shape != img.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}; it must match the image's {img.shape[:2]}.")
    mask = mask.astype(bool)
    noise = _checks.number("noise", noise, low=0)
    if mask.all():
        raise ValueError("mask removes every pixel: there is nothing to impute from. Remove "
                         "at most a fraction below 1 of the pixels.")
    out = img.copy()
    if not mask.any():
        return out.astype(np.float32).reshape(np.shape(image))
    a, weights, unknown = imputation_system(mask)
    flat = img.reshape(-1, img.shape[-1])
    solved = splu(a.tocsc()).solve(np.asarray(weights @ flat))
    if noise:
        solved = solved + noise * np.random.default_rng(seed).standard_normal(solved.shape)
    out.reshape(-1, img.shape[-1])[unknown] = solved
    return out.astype(np.float32).reshape(np.shape(image))


def road_curve(model, image, class_index, saliency, fractions=None, order: str = "morf",
               noise: float = 0.01, seed: int = 0, batch_size: int = 64):
    """The class probability as the pixels are removed in the map's order and imputed.

    ``order="morf"``: most relevant first (a good map: the probability falls fast, low area);
    ``"lerf"``: least relevant first (a good map: it stays high, high area).  ``fractions``
    default 0, 0.1, ..., 0.9 (removing every pixel leaves nothing to impute from).  Returns a
    :class:`~course_helpers.sanity.metrics.Curve` whose area is the mean over ``fractions``
    spread on [0, 1] (the trapezoid rule on the points given).  Lesson 8.
    """
    from .metrics import Curve, _auc, _check_map, _probabilities

    _checks.model(model)
    img = _checks.image_for(model, image)
    c = _checks.check_class(model, class_index)
    order = _checks.choice("order", order, ("morf", "lerf"))
    sal = _check_map(saliency, img.shape[:2])
    fr = np.linspace(0, 0.9, 10) if fractions is None else np.asarray(fractions, np.float64)
    if fr.ndim != 1 or len(fr) < 2 or fr.min() < 0 or fr.max() >= 1:
        raise ValueError(f"fractions must be at least two numbers in [0, 1), got {fractions!r}.")
    h, w = img.shape[:2]
    key = -sal.ravel() if order == "morf" else sal.ravel()
    rank = np.empty(h * w, int)
    rank[np.argsort(key, kind="stable")] = np.arange(h * w)
    rank = rank.reshape(h, w)
    counts = np.round(fr * h * w).astype(int)
    seq = np.stack([noisy_linear_impute(img, rank < k, noise=noise, seed=seed + i)
                    for i, k in enumerate(counts)])
    prob = _probabilities(model, seq, c, _checks.integer("batch_size", batch_size, low=1))
    return Curve(fr, prob, _auc(fr, prob) / (fr[-1] - fr[0]))
