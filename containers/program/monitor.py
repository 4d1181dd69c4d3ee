#!/usr/bin/env python3
"""Monitoring job (a custom Model Monitor container): see rookery_image.monitoring.

`python3 /opt/program/monitor.py data-quality|model-quality`
"""

import sys

from rookery_image.monitoring import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
