# Ringward: the everyday commands. `make ci` is what CI runs.
CARGO ?= cargo

.PHONY: all fmt fmt-check lint test doc bench demo replay replay-poison ci

all: test

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test:
	$(CARGO) test --workspace

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

bench:
	$(CARGO) bench -p ringward-benches

demo:
	$(CARGO) run --release -p ringward-bin --bin ringward -- demo

replay:
	$(CARGO) run --release -p ringward-bin --bin ringward -- replay

replay-poison:
	$(CARGO) run --release -p ringward-bin --bin ringward -- replay --scenario poison

ci: lint test doc
