"""The networks and what they are trained with: segmenters, encoders, gate classifiers, losses, Keras metrics.

`backbones` registers the segmentation models (the seed's plain `unet`, and `resnet_unet`'s
ResNet18/34 U-Nets, segmentation-models' `Unet('resnet34')` layer for layer, on the shared
ResNet `encoders`; `app_encoders` registers keras.applications' families, built by `applications`,
any number of bands through `bands`); `pretrained` fetches ImageNet encoder weights and `legacy_h5` reads
segmentation-models' `.h5` files; `classifiers` are the ship/no-ship gates; `losses` and
`keras_metrics` are serializable Keras objects; `saving` loads `.keras` files in safe mode,
`init_weights` starts a model from another's weights by layer name (`init_from`) and
`checks` refuses a model that is not a ship segmenter. Modules that import Keras do so only when
used, so this `__init__` stays light.
"""
