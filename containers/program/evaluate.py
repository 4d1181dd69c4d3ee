#!/usr/bin/env python3
"""Processing job: see rookery_image.evaluation.

`python3 /opt/program/evaluate.py --operating-point min_sensitivity:0.85 [--confidence 0.95]`
(or min_specificity:0.99, best_f1)
"""

import sys

from rookery_image.evaluation import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
