"""Reference models of the AADB paper (§4) and modern backbones: a backbone (AlexNet, or DINOv2,
CLIP, ViT, ResNet through transformers; :data:`BACKBONES`) with rating heads (Reg, AlexNet FT Conf), the regression and ranking losses (Eq. 1–2), rater-aware pair sampling, a trainer with
exact resumption and data parallelism, the attribute and content branches (§4.3–4.4) with staged
training, ensembles, and predictions in the submission format (plus backbone features).

Variants are configs (``baselines/*.toml``) read by :func:`load_config`; heads, loss terms and
pair strategies are registries (:data:`HEADS`, :data:`LOSS_TERMS`, :data:`STRATEGIES`).
"""

from .archs import BACKBONES, Family, family
from .archs.alexnet_arch import AlexNet, load_trunk_weights, read_state_dict
from .config import ModelConfig, baseline_config, baseline_names, baselines_dir, config_from_dict, load_config, paper_warp_for_crop, parse_override
from .content import kmeans
from .heads import HEADS, AestheticsHead
from .network import Network, build_model, build_network
from .losses import LOSS_TERMS, Batch, attribute_loss, rank_delta, rank_loss, regression_loss, total_loss
from .predict import features, predict, predict_attributes
from .samplers import STRATEGIES, PairSet, cross_rater_pairs, sample_pairs, within_rater_pairs
from .devices import pick_device
from .runs import RunResult, load_model, metrics_frame
from .trainer import TrainingInterrupted, train

__all__ = [
    "AestheticsHead", "BACKBONES", "Family", "Network", "family", "attribute_loss", "build_network", "features", "kmeans",
    "AlexNet", "Batch", "HEADS", "LOSS_TERMS", "ModelConfig", "PairSet", "RunResult", "STRATEGIES",
    "TrainingInterrupted", "baseline_config", "baseline_names", "baselines_dir", "build_model", "config_from_dict", "cross_rater_pairs", "load_config", "load_model",
    "load_trunk_weights", "metrics_frame", "paper_warp_for_crop", "parse_override", "pick_device", "predict", "rank_delta", "rank_loss",
    "read_state_dict", "regression_loss", "sample_pairs", "total_loss", "train", "within_rater_pairs",
    "predict_attributes",
]
