"""`python -m textseg ...` (also what `torchrun -m textseg train ...` runs)."""

from textseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
