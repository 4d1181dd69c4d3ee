#!/usr/bin/env python3
"""Processing job, pass 3 of 3: see rookery_image.preprocessing.

`python3 /opt/program/preprocess.py [--split 0.7,0.15,0.15] [--seed 42] [--standardize false]
[--max-invalid-fraction 0.01] [--train-files 1]`
"""

import sys

from rookery_image.preprocessing import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
