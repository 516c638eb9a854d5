# wasm-apiserver: `make run` builds everything and serves the example plugins;
# `make test` runs every test. Both install what they need on a fresh machine.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
GUEST_OUT   := target/$(WASM_TARGET)/guest
PLUGINS     := hello wardle-flunder wardle-fischer
DATA_DIR    ?= .data
PORT        ?= 6443

.PHONY: setup plugins run test bench dev clean

## setup: the wasm32-wasip2 target, and Debian packages the tests use (etcd, protoc).
setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v etcd >/dev/null && command -v protoc >/dev/null || { \
	  echo "installing etcd-server and protobuf-compiler (apt-get)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq etcd-server protobuf-compiler >/dev/null; }

## plugins: example plugins into target/plugins, misbehaving test plugins into target/test-plugins.
plugins: setup
	$(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(PLUGINS))
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p test-plugins --examples
	@mkdir -p target/plugins target/test-plugins
	@for p in $(PLUGINS); do cp $(GUEST_OUT)/$$(echo $$p | tr - _).wasm target/plugins/$$p.wasm; done
	@for f in guests/test-plugins/examples/*.rs; do n=$$(basename $$f .rs); \
	  cp $(GUEST_OUT)/examples/$$n.wasm target/test-plugins/$$n.wasm; done
	@ls -l target/plugins/*.wasm

## run: serve the example plugins on the embedded store, ready for kubectl.
run: plugins
	$(CARGO) run -p wasm-apiserver -- --dev --plugin-dir target/plugins --data-dir $(DATA_DIR) \
	  --secure-port $(PORT) --write-kubeconfig $(DATA_DIR)/kubeconfig

## test: unit tests (host, SDK, example plugins natively) and the end-to-end suite.
test: plugins
	$(CARGO) test -p wasm-apiserver -p wasm-apiserver-sdk -p hello -p wardle-flunder -p wardle-fischer

## bench: the benchmark harness (release build); prints a table.
bench: plugins
	$(CARGO) bench -p wasm-apiserver

clean:
	$(CARGO) clean
