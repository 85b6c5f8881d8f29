"""Product search: one query's way, top to bottom.

1. :mod:`~shoprec.search.query`: what the query means. Normalise, cut the price phrase
   and find the colour (``parse``), correct and complete its words (``spelling``), list
   what each word may stand for (``terms``, ``expansion``, learned from the click logs),
   guess the category (``intent``).
2. :mod:`~shoprec.search.index`: where the matching items are. BM25 over the items'
   text (``lexical``), which titles hold which words (``titles``), MiniLM and query-tower
   vectors (``semantic``) searched exactly or through HNSW (``vectors``).
3. :mod:`~shoprec.search.engine`: the engine composes them: filter, retrieve both ways,
   fuse, order, personalise. :mod:`~shoprec.search.store` loads it from what the search
   stages stored; :mod:`~shoprec.search.pairs` mines the click logs the stages learn from;
   :mod:`~shoprec.search.evaluate` scores it on labelled queries.
"""
