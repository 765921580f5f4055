"""The public API, on one screen: `from ecor.all import *`. Everything else stays importable from its module."""
from ecor.definition import Factorisation, log_joint, category_marginal, rationale_marginal, top_explanations
from ecor.rationales import RationaleSet, load_rationales
from ecor.towers import Towers, clip_towers
from ecor.default import default_towers
from ecor.hub import load_towers
from ecor.model import ECOR, ECORConfig, ECOROutput, Explanation, explain, load_model
from ecor.loss import LossConfig
from ecor.metrics import dror_metrics, set_metrics
from ecor.data import DATASETS, load_image_dataset, load_rationale_set
from ecor.train import TrainConfig, train
from ecor.evaluate import METHODS, BenchConfig, run_benchmark

__all__ = ['Factorisation', 'log_joint', 'category_marginal', 'rationale_marginal', 'top_explanations',
           'RationaleSet', 'load_rationales', 'load_rationale_set',
           'Towers', 'clip_towers', 'default_towers', 'load_towers',
           'ECOR', 'ECORConfig', 'ECOROutput', 'Explanation', 'explain', 'load_model',
           'LossConfig', 'TrainConfig', 'train',
           'dror_metrics', 'set_metrics', 'DATASETS', 'load_image_dataset',
           'METHODS', 'BenchConfig', 'run_benchmark']
