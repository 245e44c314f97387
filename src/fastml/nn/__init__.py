"""Neural networks with explicit backpropagation: every layer's backward is the chain rule.

No autograd. Each layer's ``forward(x)`` computes its output and caches what the
derivative needs; ``backward(grad_out)`` takes dL/d(output) and returns dL/d(input),
writing dL/d(parameter) into ``layer.grads`` (overwritten on every call). The formulas are
in each class's Notes, following Goodfellow, Bengio & Courville, *Deep Learning* (2016):
ch. 6 (feed-forward nets, back-propagation), ch. 9 (convolution) and ch. 10 (recurrent
nets, BPTT, LSTM), with Bahdanau et al. (2015) for additive attention and Vaswani et al.
(2017) for multi-head attention.

Convolution is im2col + GEMM forward and GEMM + col2im backward; im2col, col2im and max
pooling are compiled kernels (:mod:`fastml._kernels._conv`); dense algebra goes to BLAS
through ``numpy.matmul``. Training objectives are :mod:`fastml.losses`. float32 and
float64 work throughout: a layer computes in the dtype of its parameters.
"""

from fastml.nn._activation import ReLU, Sigmoid, Softmax, Tanh
from fastml.nn._attention import AdditiveAttention, MultiHeadAttention
from fastml.nn._base import Flatten, Layer
from fastml.nn._convolution import Conv2d, MaxPool2d
from fastml.nn._functional import col2im, conv2d_backward, conv2d_forward, im2col
from fastml.nn._linear import Linear
from fastml.nn._optim import SGD, Adam
from fastml.nn._recurrent import LSTM, RNN, Bidirectional
from fastml.nn._sequential import Sequential

__all__ = [
    "LSTM",
    "RNN",
    "SGD",
    "Adam",
    "AdditiveAttention",
    "Bidirectional",
    "Conv2d",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2d",
    "MultiHeadAttention",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "im2col",
]
