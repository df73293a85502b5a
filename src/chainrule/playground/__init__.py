"""The local web playground: train a network in the browser and watch the chapter happen.

Run ``chainrule playground`` (see :mod:`chainrule.playground.server`), or in Python:

>>> from chainrule.playground import Session, parse_config
>>> s = Session(parse_config({"dataset": "xor", "hidden": [4]}))
>>> s.train_epochs(2)["epoch"]
2

Modules: ``datasets`` (the 2-D data, features, CSV), ``config`` (settings and
their validation), ``network`` (the MLP run with taps for ``delta^(l)``),
``session`` (training and frames), ``diagnostics`` (gradient check, one-sample
backprop), ``export`` (run directory and snippet), ``server`` (HTTP + SSE) and
``static/`` (the page).
"""

from chainrule.playground.config import Config, FieldError, parse_config
from chainrule.playground.server import make_server
from chainrule.playground.session import Session

__all__ = ["Config", "FieldError", "Session", "make_server", "parse_config"]
