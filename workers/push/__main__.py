"""``python -m workers.push``: run the push worker."""

import sys

from workers.push.worker import main

sys.exit(main())
