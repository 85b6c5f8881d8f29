"""The candidate stage's sparse look-ups against scipy's own products and indexing, to the last bit."""

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.models.candidates import _product_at, _values_at, row_values


# _product_at sorts the picked co-purchase rows when they hold fewer entries than the catalog is wide (the first
# case: 4 anchors picking about 80), and takes scipy's product otherwise (the second and fourth: thousands)
@pytest.mark.parametrize("shoppers, items, density", [(1, 2000, 0.002), (50, 3000, 0.01), (3, 100, 0.0),
                                                      (4, 300, 0.5)])
def test_look_ups_equal_scipys_dense_answers(shoppers, items, density):
    rng = np.random.default_rng(0)
    x = sp.random(shoppers, items, density=density, format="csr", random_state=1, dtype=np.float32)
    s = sp.random(items, items, density=0.01, format="csr", random_state=2, dtype=np.float32)
    s = (s + s.T).tocsr()  # co-purchase is symmetric
    rows, cols = rng.integers(0, shoppers, 2000), rng.integers(0, items, 2000)
    product, dense = (x @ s).toarray(), x.toarray()
    # float32 summed in scipy's order: the same bits, so ties (which the ranks within a shopper read) are the same
    assert np.array_equal(_product_at(x, s, rows, cols), product[rows, cols])
    assert _product_at(x, s, rows, cols).dtype == np.float32
    assert np.array_equal(_values_at(x, rows, cols), dense[rows, cols])
    for row in range(shoppers):
        assert np.array_equal(row_values(x, row, cols), dense[row, cols])
