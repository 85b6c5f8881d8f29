"""Stage two: a DCN-v2 ranking model with click and purchase heads.

Input for a (user, item) pair: ``x0 = [ norm(numeric) ; u ; v ; u * v ]`` with the
numeric features standardised by a ``Normalization`` layer adapted on the training pairs,
and ``u = P t_user``, ``v = P t_item`` a learned projection (shared) of the user's and the
item's MiniLM content vectors (see candidates). Two cross layers (Wang et al., 2021)

    x_{l+1} = x0 * (W_l x_l + b_l) + x_l

learn bounded-degree feature crosses explicitly (e.g. "bought before" x "days since"),
a deep MLP learns the rest; an output is ``sigmoid(w . [x_cross ; x_deep])``.

Heads: ``purchase`` always; ``click`` (any click/cart/purchase) where the data has click
events. With both, the heads follow ESMM (Ma et al., 2018):

    p(click) = pCTR,    p(purchase) = pCTR * pCVR,

with ``pCVR = p(purchase | click)`` its own output. Both losses are taken over all
candidate pairs (the whole impression space), so the sparse purchase signal borrows the
dense click signal instead of being learned from a handful of positives, and the
conversion estimate is not biased by training on clicked pairs only. Each head is a
``tfrs.tasks.Ranking`` with binary cross-entropy; the final order uses p(purchase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from shoprec.config import RankingParams
from shoprec.models.training import ScaledLossModel, batches


class Ranker(ScaledLossModel):
    def __init__(self, heads: list[str], cfg: RankingParams, numeric_sample: np.ndarray):
        super().__init__()
        self.heads = list(heads)
        self.norm = tf.keras.layers.Normalization(axis=-1)
        self.norm.adapt(numeric_sample)
        self.content = tf.keras.layers.Dense(32, use_bias=False, name="content_projection")
        self.crosses = [tfrs.layers.dcn.Cross() for _ in range(cfg.cross_layers)]
        self.deep = tf.keras.Sequential([tf.keras.layers.Dense(u, activation="relu") for u in cfg.deep_units])
        outputs = ["click", "conversion"] if "click" in self.heads else ["purchase"]
        self.outputs_ = {o: tf.keras.layers.Dense(1, activation="sigmoid", dtype="float32") for o in outputs}
        self.tasks = {
            h: tfrs.tasks.Ranking(
                loss=tf.keras.losses.BinaryCrossentropy(reduction=tf.keras.losses.Reduction.NONE),
                metrics=[tf.keras.metrics.AUC(name=f"{h}_auc")],
            )
            for h in self.heads
        }

    def call(self, features: dict) -> dict[str, tf.Tensor]:
        u, v = self.content(features["user_text"]), self.content(features["item_text"])
        x0 = tf.concat([self.norm(features["numeric"]), u, v, u * v], axis=-1)
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        h = tf.concat([x, self.deep(x0)], axis=-1)
        out = {name: tf.squeeze(layer(h), -1) for name, layer in self.outputs_.items()}
        if "conversion" in out:
            out["purchase"] = out["click"] * out.pop("conversion")
        return out

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        predictions = self(features)
        per_example = tf.add_n([self.tasks[h](labels=features[f"label_{h}"][:, None], predictions=predictions[h][:, None])
                                for h in self.heads])
        # the mean over the global batch: each replica divides its share's sum by the global batch size, and
        # the replicas' gradients are summed (one replica: the batch mean)
        return tf.nn.compute_average_loss(per_example)


def train_ranker(
    features: dict[str, np.ndarray], heads: list[str], cfg: RankingParams, strategy: tf.distribute.Strategy, seed: int
) -> tuple[Ranker, list[float]]:
    ds = batches(features, cfg.batch_size, seed, drop_remainder=False)
    with strategy.scope():
        model = Ranker(heads, cfg, features["numeric"])
        model.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate))
    hist = model.fit(ds, epochs=cfg.epochs, verbose=2)
    return model, [float(x) for x in hist.history["loss"]]


@dataclass(frozen=True)
class RankerArrays:
    """A fitted :class:`Ranker` as NumPy arrays: the forward pass every list is scored with.

    Scoring one request's few hundred pairs through TensorFlow costs milliseconds of
    dispatch for microseconds of arithmetic; the same layers in NumPy (float32, the
    model's order of operations) cost a fraction of that and agree with the model to
    float rounding (a test checks 1e-5). Batch scoring uses it too, so the lists the
    service computes and the ones it precomputes come from one forward pass.
    """

    heads: tuple[str, ...]
    mean: np.ndarray  # the Normalization layer's, [n_numeric]
    scale: np.ndarray  # max(sqrt(variance), epsilon), [n_numeric]
    content: np.ndarray  # [d_text, d]: the shared content projection (no bias)
    crosses: tuple[tuple[np.ndarray, np.ndarray], ...]  # per cross layer: kernel, bias
    deep: tuple[tuple[np.ndarray, np.ndarray], ...]  # per ReLU layer: kernel, bias
    outputs: dict[str, tuple[np.ndarray, np.ndarray]]  # "purchase", or "click" and "conversion": kernel, bias

    @classmethod
    def from_model(cls, model: Ranker) -> RankerArrays:
        dense = lambda layer: (layer.kernel.numpy(), layer.bias.numpy())  # noqa: E731
        variance = model.norm.variance.numpy().reshape(-1)
        return cls(tuple(model.heads), model.norm.mean.numpy().reshape(-1),
                   np.maximum(np.sqrt(variance), tf.keras.backend.epsilon()).astype(np.float32),
                   model.content.kernel.numpy(), tuple(dense(c._dense) for c in model.crosses),
                   tuple(dense(d) for d in model.deep.layers), {o: dense(d) for o, d in model.outputs_.items()})

    def __call__(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`Ranker.call` on float32 arrays."""
        return self.forward(features["numeric"], self.project(features["user_text"]), self.project(features["item_text"]))

    def project(self, text: np.ndarray) -> np.ndarray:
        """The shared content projection of text vectors (``[n, d_text] -> [n, d]``): linear, so it can be
        taken once per shopper and per item instead of once per pair."""
        return text @ self.content

    def forward(self, numeric: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        """The layers after the projection, on pairs' numeric features and projected user and item text."""
        x0 = np.concatenate([(numeric - self.mean) / self.scale, u, v, u * v], axis=1)
        x = x0
        for kernel, bias in self.crosses:
            x = x0 * (x @ kernel + bias) + x
        deep = x0
        for kernel, bias in self.deep:
            deep = np.maximum(deep @ kernel + bias, 0.0)
        h = np.concatenate([x, deep], axis=1)
        out = {name: _sigmoid((h @ kernel + bias)[:, 0]) for name, (kernel, bias) in self.outputs.items()}
        if "conversion" in out:
            out["purchase"] = out["click"] * out.pop("conversion")
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def predict(ranker: RankerArrays, numeric: np.ndarray, users: np.ndarray, user_pos: np.ndarray,
            items: np.ndarray, item: np.ndarray, batch: int = 65536) -> dict[str, np.ndarray]:
    """The heads' predictions on pairs ``(user_pos[p], item[p])``, ``batch`` pairs at a time (bounded memory),
    given the projected text (:meth:`RankerArrays.project`) of the users (``users``) and of the catalog
    (``items``): the model on the pairs' features, without projecting each pair's two text vectors again
    (about 40% of the ranker's multiplications on the default layers)."""
    out: dict[str, list[np.ndarray]] = {h: [] for h in ranker.heads}
    for s in range(0, len(numeric), batch):
        at = slice(s, s + batch)
        pred = ranker.forward(numeric[at], users[user_pos[at]], items[item[at]])
        for h in ranker.heads:
            out[h].append(pred[h])
    return {h: np.concatenate(v) if v else np.zeros(0, np.float32) for h, v in out.items()}
