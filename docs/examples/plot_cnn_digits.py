"""
A small CNN on the digits: learning curve and filters
=====================================================

A convolutional network written with :mod:`fastml.nn` layers (every gradient by explicit
backpropagation through im2col, see the :doc:`user guide </user_guide/nn>`), trained with
Adam on 1,400 of scikit-learn's 8x8 digits and tested on the other 397. We plot the
training loss and test accuracy per epoch and the 16 learned 3x3 filters of the first
layer.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from fastml import nn

d = load_digits()
X = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
y = d.target
net = nn.Sequential(
    [
        nn.Conv2d(1, 16, 3, padding=1, random_state=0, dtype=np.float32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10, random_state=1, dtype=np.float32),
    ]
)
history = net.fit(
    X[:1400],
    y[:1400],
    epochs=12,
    batch_size=32,
    optimizer=nn.Adam(3e-3),
    validation_data=(X[1400:], y[1400:]),
    random_state=0,
    verbose=False,
)
print(
    f"test accuracy after {len(history['loss'])} epochs: {net.score(X[1400:], y[1400:]):.3f}"
)

fig, ax = plt.subplots(figsize=(7, 3.5))
epochs = np.arange(1, len(history["loss"]) + 1)
ax.plot(epochs, history["loss"], "C0o-", label="training loss")
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy", color="C0")
ax2 = ax.twinx()
ax2.plot(epochs, history["val_accuracy"], "C1s-", label="test accuracy")
ax2.set_ylabel("test accuracy", color="C1")
ax.set_title("Learning curve")
fig.tight_layout()

# %%
# First-layer filters
# -------------------

w = net.layers[0].params["weight"][:, 0]
lim = np.abs(w).max()
fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for k, ax in enumerate(axes.ravel()):
    ax.imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.axis("off")
fig.suptitle("The 16 learned 3x3 filters (red positive, blue negative)")
fig.tight_layout()
