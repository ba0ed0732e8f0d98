"""Built-in encoders; importing this package registers them."""

from soundalike.models.encoders.contrastive_cnn import ContrastiveCNN
from soundalike.models.encoders.crnn import CRNN
from soundalike.models.encoders.dilated_cnn import DilatedCNN
from soundalike.models.encoders.fcn5 import FCN5
from soundalike.models.encoders.fingerprint_cnn import FingerprintCNN
from soundalike.models.encoders.hash_cnn import HashCNN
from soundalike.models.encoders.resnet_cnn import ResNetCNN

__all__ = ["CRNN", "FCN5", "ContrastiveCNN", "DilatedCNN", "FingerprintCNN", "HashCNN", "ResNetCNN"]
