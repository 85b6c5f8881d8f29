"""shoprec: e-commerce search and recommendation, from raw events to a served model.

This module runs before anything imports TensorFlow, so it is the one place where
process-wide switches are set:

* ``TF_USE_LEGACY_KERAS=1``: TensorFlow Recommenders is written against Keras 2
  (the ``tf-keras`` package); with this set, ``tf.keras`` resolves to it.
* Telemetry off for every tool that has a switch (Prefect, DVC, Great Expectations,
  BentoML) and no model hub look-ups: shoprec never calls out of the machine.

``setdefault`` keeps an explicit user choice, except for the Keras switch, which
TFRS cannot run without.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
for _name, _value in {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "DO_NOT_TRACK": "1",
    "BENTOML_DO_NOT_TRACK": "True",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
