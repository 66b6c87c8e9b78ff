"""`python -m distw2v.synthetic [zipf|planted|sessions] ...`."""

from .command import main

raise SystemExit(main())
