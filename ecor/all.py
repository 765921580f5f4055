"The public API: `from ecor.all import *`."
from ecor.definition import *
from ecor.rationales import *
from ecor.towers import *
from ecor.prompts import *
from ecor.model import *
from ecor.loss import *
