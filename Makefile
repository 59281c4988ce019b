# Ringward: the everyday commands. `make ci` is what CI runs.
CARGO ?= cargo

.PHONY: all fmt fmt-check lint cycles test doc package pingora-example bench bench-peers demo replay replay-poison ci check-ui

all: test

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check cycles
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# No crate's modules may form a cycle (each file a module; see the script's header).
cycles:
	python3 scripts/module-cycles.py crates/*/src

# Every publishable crate packages and builds from its own tarball (path dependencies
# resolved from the other packages, as they would be from crates.io).
PACKAGES = -p ringward-core -p ringward-health -p ringward-simhost -p ringward-embed -p ringward-etcd -p ringward -p ringward-lab -p ringward-bin
# Verification unpacks our crates from a temporary local registry into cargo's shared
# source cache, by name and version; an unpack left by an earlier run of the same version
# would be built instead of the new tarball, so ours are cleared first (never a crates.io
# crate: none of ours is published).
# (`ringward-*` alone would miss the router crate, named plain `ringward`.)
CARGO_HOME ?= $(HOME)/.cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
package:
	rm -rf $(CARGO_HOME)/registry/src/*/ringward-$(VERSION) $(CARGO_HOME)/registry/src/*/ringward-*-$(VERSION)
	$(CARGO) package $(PACKAGES) --allow-dirty

# Installs what the TLS and fleet tests need besides Rust when missing (scripts/test-deps.sh).
test:
	scripts/test-deps.sh
	$(CARGO) test --workspace

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

bench:
	$(CARGO) bench -p ringward-benches

# Ringward side by side with nginx and HAProxy behind the same three backends (wrk; about
# 5 minutes; installs nginx, haproxy, wrk and h2load with apt-get when missing). Options go
# in ARGS: make bench-peers ARGS="--smoke" (or --write-docs, --idle, --h2, --tls, --soak 300,
# --help).
bench-peers:
	python3 benches/peers/run.py $(ARGS)

demo:
	$(CARGO) run --release -p ringward-bin --bin ringward -- demo

replay:
	$(CARGO) run --release -p ringward-bin --bin ringward -- replay

replay-poison:
	$(CARGO) run --release -p ringward-bin --bin ringward -- replay --scenario poison

ci: lint test doc package pingora-example

# Ringward's ring as a Pingora BackendSelection (crates/pingora-example, outside the
# workspace: Pingora's build needs cmake, which `.ci/run` installs when missing).
PINGORA = --manifest-path crates/pingora-example/Cargo.toml
pingora-example:
	$(CARGO) fmt $(PINGORA) -- --check
	$(CARGO) clippy $(PINGORA) --all-targets -- -D warnings
	$(CARGO) test $(PINGORA)

# Screenshots of the status page before, during and after the demo's incident, in
# target/check-ui/ (and docs/status-page.png); installs Debian's chromium when missing.
# Not in CI: look at the pictures.
check-ui:
	python3 scripts/check-ui.py
