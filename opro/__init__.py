"""lingxi opro: the prompt optimizer."""
