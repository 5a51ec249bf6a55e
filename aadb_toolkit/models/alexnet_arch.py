"""Former home of the AlexNet front end, kept so that ``aadb_toolkit.models.alexnet_arch`` imports
keep working; the family now lives in :mod:`.archs.alexnet_arch` beside the other backbones."""

from .archs.alexnet_arch import (CAFFE_SHAPES, CONV_CHANNELS, FC_SIZE, MIN_INPUT_SIZE, POOL_SIZE,  # noqa: F401
                                 TRUNK_PREFIXES, AlexNet, load_trunk_weights, read_state_dict, scaled)
