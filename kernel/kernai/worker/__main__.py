import sys

from kernai.worker.process import main

sys.exit(main())
