"""Importing course_helpers switches TensorFlow to tf-keras, or says clearly why it can't."""
import os
import subprocess
import sys


def _run(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_import_first_gives_tf_keras():
    res = _run("import course_helpers, tensorflow as tf, tf_keras, os; "
               "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense is tf_keras.layers.Dense, "
               "tf_keras.__version__)")
    assert res.returncode == 0, res.stderr
    flag, same, version = res.stdout.split()[-3:]
    assert flag == "1" and same == "True" and version.startswith("2.")


def test_tensorflow_first_with_keras3_raises_restart_advice():
    res = _run("import tensorflow\nimport course_helpers")
    assert res.returncode != 0
    assert "ImportError" in res.stderr
    assert "restart the kernel" in res.stderr and "import course_helpers" in res.stderr
