"""Keras-origin ONNX models through tensorsmith.onnx, checked against onnxruntime.

TensorFlow is not a dependency of tensorsmith, so this runs in two steps under two interpreters:

    /tmp/tfvenv/bin/python tensorsmith/bench/onnx_keras.py export FOLDER   # TF venv (no torch)
    .venv/bin/python -m tensorsmith.bench.onnx_keras compare FOLDER        # tensorsmith's venv

`export` builds small Keras models with random weights, a CNN (Conv/BatchNorm/ReLU/pooling/
Dense), MobileNetV2 at 96x96 and a transformer-style text encoder (Embedding, MultiHeadAttention,
LayerNormalization, Dense), and converts each with tf2onnx to FOLDER/NAME.onnx. It imports only
the standard library, numpy, tensorflow and tf2onnx; run it by file path, since importing the
tensorsmith package needs torch. `compare` times each FOLDER/*.onnx against onnxruntime
(bench/onnx_latency.compare_model) with random inputs, symbolic dimensions set to 1, and prints
the table. Token ids are drawn in [0, 100), so the text model's vocabulary is larger than that.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

OPSET = 17
VOCAB, SEQ, WIDTH, HEADS = 1000, 32, 64, 4


def _cnn(keras):
    layers = keras.layers
    x = inputs = keras.Input((64, 64, 3), name="image")
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.DepthwiseConv2D(3, padding="same")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)  # logits: a softmax would squash differences to near-uniform values
    return keras.Model(inputs, x, name="keras_cnn")


def _mobilenet(keras):
    base = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10,
                                          classifier_activation=None)
    image = keras.Input((96, 96, 3), name="image")
    return keras.Model(image, base(image), name="keras_mobilenet_v2")


def _text(keras):
    layers = keras.layers
    tokens = keras.Input((SEQ,), dtype="int32", name="tokens")
    x = layers.Embedding(VOCAB, WIDTH)(tokens)
    for _ in range(2):
        attended = layers.MultiHeadAttention(HEADS, WIDTH // HEADS)(x, x)
        x = layers.LayerNormalization(epsilon=1e-5)(x + attended)
        # Exact gelu lowers to Erfc in TensorFlow, which tf2onnx does not convert; tanh form does.
        hidden = layers.Dense(4 * WIDTH)(x)
        hidden = keras.activations.gelu(hidden, approximate=True)
        x = layers.LayerNormalization(epsilon=1e-5)(x + layers.Dense(WIDTH)(hidden))
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(5)(x)
    return keras.Model(tokens, x, name="keras_text")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def export(folder: str) -> list[str]:
    """The models with random weights, as FOLDER/keras_cnn.onnx, keras_mobilenet_v2.onnx and
    keras_text.onnx."""
    import numpy as np
    import tensorflow as tf
    import tf2onnx

    keras = tf.keras
    keras.utils.set_random_seed(0)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for build in (_cnn, _mobilenet, _text):
        model = build(keras)
        # Non-trivial BatchNorm statistics, so the folded scale and shift are exercised.
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                n = layer.moving_mean.shape[0]
                layer.moving_mean.assign(np.random.default_rng(1).normal(0, 0.1, n))
                layer.moving_variance.assign(np.random.default_rng(2).uniform(0.5, 1.5, n))
        spec = [tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype, name=t.name.split(":")[0])
                for t in model.inputs]
        path = os.path.join(folder, model.name + ".onnx")
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=path)
        paths.append(path)
        print("wrote", path, flush=True)
    return paths


def compare(folder: str, rounds: int = 20) -> list[dict]:
    import onnx

    from .onnx_latency import compare_model, format_table

    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "*.onnx"))):
        graph = onnx.load(path, load_external_data=False).graph
        initializers = {i.name for i in graph.initializer}
        shapes = {}
        for value in graph.input:
            if value.name in initializers:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else 1
                    for d in value.type.tensor_type.shape.dim]
            shapes[value.name] = "x".join(map(str, dims))
        rows.append(compare_model(path, shapes=shapes, rounds=rounds))
    print(format_table(rows))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["export", "compare"])
    parser.add_argument("folder")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if args.mode == "export":
        export(args.folder)
    else:
        compare(args.folder, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
