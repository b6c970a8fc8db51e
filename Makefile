# The two commands of README.md: `make main` (set up + main job) and `make test` (set up + tests).
# `make figures` is the main job writing into figures/, the committed pictures README shows. The synthetic data is
# seeded, so rewriting it (--overwrite) gives the same files and lets either job run after the other.
.PHONY: setup main figures test bench clean

setup:
	bash scripts/setup.sh

main: setup
	.venv/bin/textseg synth --out outputs/synth --overwrite
	.venv/bin/textseg notebooks --out outputs/notebooks -p figures_dir outputs/figures

figures: setup
	.venv/bin/textseg synth --out outputs/synth --overwrite
	.venv/bin/textseg notebooks --out outputs/notebooks -p figures_dir figures

test:
	bash scripts/setup.sh --browser
	.venv/bin/python -m pytest -q -ra

bench: setup
	.venv/bin/python benchmarks/bench.py

clean:
	rm -rf outputs
