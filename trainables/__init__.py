"""Everything a trial needs: data, feature sets, model families, the search space and the Tune trainable."""
