#!/usr/bin/env python3
"""Processing job: see rookery_image.baselining.

`python3 /opt/program/baseline.py --thresholds '{"drift": {...}, "quality": {...}}'`
"""

import sys

from rookery_image.baselining import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
