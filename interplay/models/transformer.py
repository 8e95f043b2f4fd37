"""One-layer decoder of the grokking literature (Nanda et al., 2023).

Token + learned position embeddings, one attention layer (4 heads × 32), a ReLU
MLP (512), no LayerNorm by default, and the unembedding as the `head`. Only the
`=` (last) position feeds the logits in a one-layer model, so queries and the
MLP are computed there alone; keys and values use every position.

Representation taps for the grokking study are sown into the `intermediates`
collection (`model.apply(..., mutable=["intermediates"])`), each at `=`:
`attention` (what the attention block adds to the residual stream, `(n, width)`),
`mlp_hidden` (the ReLU activations, `(n, mlp_dim)`) and `residual` (the residual
stream after the MLP, before any final LayerNorm). The returned `features` are
what the head reads: `residual`, or its LayerNorm when `layer_norm=True`.

`style="nanda"` follows Nanda et al.'s code (`progress-measures-paper`,
`transformers.py`): every weight plain normal (untruncated) with std
1/√width, biases 0, and the unembedding over the whole vocabulary (`C + 1`
outputs, the `=` token included, std 1/√vocab_size; the loss and the argmax
read all of them, the metrics the C class rows). `style="flax"`: Flax's
defaults (LeCun truncated normal over fan-in: the MLP's output 1/√mlp_dim),
the unembedding over the C classes.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Transformer(nn.Module):
    """`__call__(tokens (n, T)) → (logits (n, C), features (n, width))` at the last position."""

    vocab_size: int
    num_classes: int
    width: int = 128
    num_heads: int = 4
    head_dim: int = 32
    mlp_dim: int = 512
    layer_norm: bool = False
    max_len: int = 3
    style: str = "flax"

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train  # no dropout or batch statistics
        if self.style not in STYLES:
            raise ValueError(f"Transformer style must be one of {STYLES}, got {self.style!r}.")
        init = nn.initializers.normal(1 / jnp.sqrt(self.width))
        nanda = self.style == "nanda"
        kernel = {"kernel_init": init} if nanda else {}
        x = nn.Embed(self.vocab_size, self.width, embedding_init=init, name="embed")(tokens)
        x = x + self.param("position", init, (self.max_len, self.width))[: tokens.shape[1]]

        def norm(name):
            return nn.LayerNorm(name=name) if self.layer_norm else (lambda y: y)

        def heads(name):
            shape = (self.num_heads, self.head_dim)
            return nn.DenseGeneral(shape, use_bias=False, name=name, **kernel)

        h = norm("ln_attention")(x)
        q = heads("query")(h[:, -1])  # (n, heads, head_dim)
        k, v = heads("key")(h), heads("value")(h)  # (n, T, heads, head_dim)
        weights = jax.nn.softmax(jnp.einsum("nhd,nthd->nht", q, k) / jnp.sqrt(self.head_dim))
        attended = jnp.einsum("nht,nthd->nhd", weights, v)
        out = nn.DenseGeneral(self.width, axis=(-2, -1), use_bias=False, name="out", **kernel)(
            attended
        )
        residual = x[:, -1] + out
        hidden = nn.relu(nn.Dense(self.mlp_dim, name="mlp_in", **kernel)(norm("ln_mlp")(residual)))
        residual = residual + nn.Dense(self.width, name="mlp_out", **kernel)(hidden)
        for name, value in (("attention", out), ("mlp_hidden", hidden), ("residual", residual)):
            self.sow("intermediates", name, value)
        features = norm("ln_final")(residual)  # what the head reads
        if nanda:
            unembed = nn.initializers.normal(1 / jnp.sqrt(self.vocab_size))
            head = nn.Dense(self.vocab_size, use_bias=False, kernel_init=unembed, name="head")
        else:
            head = nn.Dense(self.num_classes, use_bias=False, name="head")
        return head(features), features


#: `Transformer.style` values.
STYLES = ("flax", "nanda")
