"""The help centre in the search box: tell customer-service questions from product searches, answer or hand over.

:mod:`.classifier` (the intent classifier on a query's MiniLM vector, and its verdict),
:mod:`.examples` (what it is trained and measured on), :mod:`.answers` (an answer
template filled from the shopper's own data). The ``train_intents`` stage
(:mod:`shoprec.stages.train_intents`) fits it; the service asks it on every ``/search`` and ``/assist``.
"""
