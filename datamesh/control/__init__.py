"""Controllers: compare declared with observed state, plan actions (pure), then apply them."""
