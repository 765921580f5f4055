"The public API: `from ecor.all import *`."
from ecor.definition import *
from ecor.rationales import *
from ecor.towers import *
from ecor.prompts import *
from ecor.model import *
from ecor.loss import *
from ecor.metrics import *
from ecor.data import *
from ecor.default import default_towers, DefaultConfig
from ecor.train import *
from ecor.evaluate import *
from ecor.plots import *
from ecor.grounding import *
