"""The data: the Kaggle layout and its index, RLE, splits, synthetic data, checks, the roles of a run."""
