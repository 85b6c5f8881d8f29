"""Online experiments: which shoppers a challenger model serves, and what it did to them."""
