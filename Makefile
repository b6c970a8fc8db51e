# The two commands of README.md: `make main` (set up + main job) and `make test` (set up + tests).
.PHONY: setup main test bench clean

setup:
	bash scripts/setup.sh

main: setup
	.venv/bin/textseg synth --out outputs/synth
	.venv/bin/textseg notebooks --out outputs/notebooks

test:
	bash scripts/setup.sh --browser
	.venv/bin/python -m pytest -q -ra

bench: setup
	.venv/bin/python benchmarks/bench.py

clean:
	rm -rf outputs
