#!/usr/bin/env python3
"""Processing job, pass 2 of 3: see rookery_image.preprocessing.

`python3 /opt/program/preprocess_fit.py [--split 0.7,0.15,0.15] [--seed 42] [--standardize false]
[--max-invalid-fraction 0.01] [--train-files 1]`
"""

import sys

from rookery_image.preprocessing import main_fit

if __name__ == "__main__":
    sys.exit(main_fit(sys.argv[1:]))
