"""The embedded sample source: a seeded storefront generator.

``generate(params)`` returns :class:`SampleData` (items, events, query_labels in
contract types); ``load(params)`` wraps it as :class:`~shoprec.data.sources.base.RawTables`.
Modules: :mod:`vocab` (words, reusable by search), :mod:`catalog` (items),
:mod:`behaviour` (shoppers, sessions, funnel), :mod:`queries` (query text and labels),
:mod:`generator` (assembly).
"""

from shoprec.data.sources.sample.generator import SampleData, generate, load

__all__ = ["SampleData", "generate", "load"]
