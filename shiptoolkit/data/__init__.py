"""The data: the Kaggle layout and its index, RLE, ship instances, splits, synthetic data, checks, the roles of a run.

`airbus` indexes a Kaggle folder (image ids to ship RLEs) and reads images safely; `rle` and
`instances` turn run-length codes, masks and non-overlapping ship instances into each other;
`source` opens the dataset a config names (a Kaggle folder, or synthetic data from `synth`
generated once into a cache) and splits it into train, validation and test (`split`, `groups`);
`check` reports every problem in a dataset, nothing dropped.
"""
