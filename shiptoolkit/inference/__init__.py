"""From a trained run to ships: whole-image prediction, the gate, post-processing, submissions, exports.

`prediction` predicts full images (whole or in sliding windows, batched) and post-processes
probabilities into non-overlapping ship instances; `gate` applies the ship/no-ship classifier
before the segmenter; `replicas` spreads forward passes over a machine's devices; `stage`
is the predict stage that writes a run's `submission.csv`; `submission` writes Kaggle CSVs;
`sharding` and `merging` split a prediction over machines and join the parts; `export` writes
SavedModel, ONNX or TFLite files with their post-processing, and `exported` reads them back;
`ensemble` averages several runs' segmenters (and gates) into one model.
"""
