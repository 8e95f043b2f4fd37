"""Independent float64 NumPy reference: the papers' naive n × n definitions."""

import numpy as np


def gram(x):
    x = np.asarray(x, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return xn @ xn.T


def matrix_entropy(k):
    k = np.asarray(k, np.float64)
    lam = np.linalg.eigvalsh(k / np.trace(k))
    lam = lam[lam > 1e-15]
    return float(-(lam * np.log(lam)).sum())


def renyi_entropy(k, alpha):
    """`log(Σ λ^α) / (1 − α)` over eigenvalues of `K / tr K` above NumPy's rank tolerance."""
    lam = np.linalg.eigvalsh(np.asarray(k, np.float64) / np.trace(k))
    lam = lam[lam > len(lam) * np.finfo(np.float64).eps * lam.max()]
    return float(np.log(np.sum(lam**alpha)) / (1 - alpha))


def interplay(features, labels, head):
    """(h_features, h_heads, h_joint, mi, mir, hdr) from three n × n eigendecompositions."""
    k1 = gram(features)
    k2 = gram(np.asarray(head)[np.asarray(labels)])
    h1, h2, hj = matrix_entropy(k1), matrix_entropy(k2), matrix_entropy(k1 * k2)
    mi = h1 + h2 - hj
    return dict(
        h_features=h1,
        h_heads=h2,
        h_joint=hj,
        mi=mi,
        mir=mi / min(h1, h2),
        hdr=abs(h1 - h2) / max(h1, h2),
    )


def nc_mir(c):
    """The closed form at Neural Collapse (docs/papers.md)."""
    return 1 / (c - 1) + (c - 2) * np.log(c - 2) / ((c - 1) * np.log(c - 1))


def etf_features(num_classes, per_class, dim, seed=0):
    """Collapsed features: `per_class` copies of each simplex-ETF vertex, built in NumPy."""
    rng = np.random.default_rng(seed)
    c = num_classes
    m = np.eye(c) - 1 / c  # centered one-hots; rows have Gram ℰ(−1/(C−1)) after normalizing
    q, _ = np.linalg.qr(rng.normal(size=(dim, c)))
    head = m @ q.T  # rotate into R^dim (needs dim ≥ C)
    labels = np.repeat(np.arange(c), per_class)
    return head[labels], labels, head


def assert_interplay_close(a, b, rtol=2e-4, prefix="", atol=1e-5):
    """Compares interplay records from different float32 programs (summation orders).

    Entropies get `rtol` (and `atol`: a near-rank-one spectrum's entropy has absolute
    round-off ~ eps · d · |log λ|). MI = H_f + H_h − H_joint cancels O(1) entropies, so
    its round-off is absolute, ~rtol·(H_f + H_h); MIR divides that by min(H_f, H_h).
    """
    hf, hh = a[prefix + "h_features"], a[prefix + "h_heads"]
    for key in ("h_features", "h_heads", "hdr"):
        np.testing.assert_allclose(
            a[prefix + key], b[prefix + key], rtol=rtol, atol=atol, err_msg=key
        )
    mi_tol = rtol * (hf + hh)
    np.testing.assert_allclose(a[prefix + "mi"], b[prefix + "mi"], atol=mi_tol, err_msg="mi")
    np.testing.assert_allclose(
        a[prefix + "mir"], b[prefix + "mir"], atol=mi_tol / min(hf, hh), err_msg="mir"
    )


def collapse(features, labels, head, logits=None):
    """NC metrics by their definitions, two-pass in long double, present classes only.

    Centre = unweighted mean of the class means; returns a dict named like
    `interplay.infotheory.collapse_metrics.CollapseMetrics` (+ `nc4` when `logits` given).
    """
    z = np.asarray(features, np.longdouble)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    c = len(classes)
    mu = np.stack([z[labels == k].mean(0) for k in classes])
    m = mu - mu.mean(0)
    dev = z - mu[np.searchsorted(classes, labels)]
    sw = (dev.T @ dev / len(z)).astype(np.float64)
    sb = (m.T @ m / c).astype(np.float64)
    m = m.astype(np.float64)
    norms = np.linalg.norm(m, axis=1)
    cos = (m @ m.T) / np.outer(norms, norms)
    off = cos[~np.eye(c, dtype=bool)]
    g = m @ m.T
    w = np.asarray(head, np.float64)[classes]
    nc3 = np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m))
    out = dict(
        nc1=np.trace(sw @ np.linalg.pinv(sb)) / c,
        nc2_etf=np.linalg.norm(g / np.linalg.norm(g) - (np.eye(c) - 1 / c) / np.sqrt(c - 1)),
        nc2_equinorm=norms.std() / norms.mean(),
        nc2_equiangular=off.std(),
        nc2_maxangle=np.abs(off + 1 / (c - 1)).mean(),
        nc3=nc3,
        nc3_squared=nc3**2,
    )
    if logits is not None:
        distances = ((z[:, None, :] - np.asarray(mu, np.longdouble)[None]) ** 2).sum(-1)
        nearest = classes[np.argmin(distances, 1)]
        out["nc4"] = float(np.mean(nearest == np.argmax(logits, 1)))
    return out
