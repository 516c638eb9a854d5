# wasm-apiserver: `make run` builds everything and serves the example plugins;
# `make test` runs every test. Both install what they need on a fresh machine.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
GUEST_OUT   := target/$(WASM_TARGET)/guest
PLUGINS     := hello wardle-flunder wardle-fischer
DEVOPS_KINDS := pipelines pipelineruns pipelinesummaries
DATA_DIR    ?= .data
PORT        ?= 6443
HELLO       ?= rust

# Python and JavaScript plugins: componentize-py from PyPI in a venv under target/,
# componentize-js from npm (versions pinned in guests/js/package-lock.json).
COMPONENTIZE_PY_VERSION := 0.25.1
SCHEMATHESIS_VERSION := 4.32.5
PY_TOOLS    := target/tools/python
COMPONENTIZE_PY := $(PY_TOOLS)/bin/componentize-py
JS_TOOLS    := guests/js/node_modules/.package-lock.json
LANG_OUT    := target/lang-plugins
PY_SDK      := $(wildcard guests/python/*.py)
JS_SDK      := guests/js/wasm-apiserver-sdk.js guests/js/build.mjs
WIT         := $(wildcard wit/*.wit)
SUDO        := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup setup-build example-plugins plugins lint schemathesis py-kube-client lang-plugins lang-unit-tests run test bench dev clean

## setup-build: what building needs: the wasm32-wasip2 target, and protoc (the etcd
## client compiles etcd's protobuf files).
setup-build:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v protoc >/dev/null || { \
	  echo "==> installing protobuf-compiler (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq protobuf-compiler >/dev/null; }

## setup: setup-build, and the Debian packages the tests start (etcd).
setup: setup-build
	@command -v etcd >/dev/null || { \
	  echo "==> installing etcd-server (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq etcd-server >/dev/null; }

## example-plugins: the example plugins into target/plugins (devops is three plugins,
## one per kind, built as the devops crate's examples).
example-plugins: setup-build
	$(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(PLUGINS))
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p devops --examples
	@mkdir -p target/plugins
	@for p in $(PLUGINS); do cp $(GUEST_OUT)/$$(echo $$p | tr - _).wasm target/plugins/$$p.wasm; done
	@for k in $(DEVOPS_KINDS); do cp $(GUEST_OUT)/examples/devops_$$k.wasm target/plugins/devops-$$k.wasm; done

## plugins: example plugins into target/plugins; misbehaving test plugins and a stricter
## build of hello (hello-pinned.wasm) into target/test-plugins; the Python and
## JavaScript plugins (lang-plugins).
plugins: setup example-plugins
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p test-plugins --examples
	@mkdir -p target/test-plugins
	@for f in guests/test-plugins/examples/*.rs; do n=$$(basename $$f .rs); \
	  cp $(GUEST_OUT)/examples/$$n.wasm target/test-plugins/$$n.wasm; done
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p hello --features pinned-images
	@cp $(GUEST_OUT)/hello.wasm target/test-plugins/hello-pinned.wasm
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p hello --features lossy-convert
	@cp $(GUEST_OUT)/hello.wasm target/test-plugins/hello-lossy.wasm
	@ls -l target/plugins/*.wasm
	@$(MAKE) --no-print-directory lang-plugins

## lang-plugins: hello in Python and JavaScript into target/lang-plugins, and their
## misbehaving test plugins into target/test-plugins (each rebuilt only when its
## sources change; the tools are installed on first use).
lang-plugins: $(LANG_OUT)/hello-python.wasm $(LANG_OUT)/hello-js.wasm \
  $(LANG_OUT)/wardle-flunder-python.wasm $(LANG_OUT)/wardle-flunder-js.wasm \
  target/test-plugins/misbehave-python.wasm target/test-plugins/misbehave-js.wasm

$(COMPONENTIZE_PY):
	@command -v python3 >/dev/null && python3 -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3 and python3-venv (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	python3 -m venv $(PY_TOOLS)
	$(PY_TOOLS)/bin/pip install -q --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)

$(JS_TOOLS): guests/js/package.json guests/js/package-lock.json
	@command -v npm >/dev/null || { \
	  echo "installing nodejs and npm (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd guests/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# componentize-py <wit> <app dir> <out>: the app dir holds app.py with `Hooks`.
define componentize_py
	@mkdir -p $(dir $(3))
	$(COMPONENTIZE_PY) -d wit -w plugin componentize app -p $(2) -p guests/python -o $(3).tmp
	@mv $(3).tmp $(3)
endef

$(LANG_OUT)/hello-python.wasm: $(wildcard examples/hello-python/*.py) $(PY_SDK) $(WIT) | $(COMPONENTIZE_PY)
	$(call componentize_py,,examples/hello-python,$@)

$(LANG_OUT)/wardle-flunder-python.wasm: $(wildcard examples/wardle-flunder-python/*.py) $(PY_SDK) $(WIT) | $(COMPONENTIZE_PY)
	$(call componentize_py,,examples/wardle-flunder-python,$@)

target/test-plugins/misbehave-python.wasm: $(wildcard guests/test-plugins/python/*.py) $(PY_SDK) $(WIT) | $(COMPONENTIZE_PY)
	$(call componentize_py,,guests/test-plugins/python,$@)

$(LANG_OUT)/hello-js.wasm: $(wildcard examples/hello-js/*.js) $(JS_SDK) $(WIT) $(JS_TOOLS)
	@mkdir -p $(dir $@)
	node guests/js/build.mjs examples/hello-js/hello.js $@

$(LANG_OUT)/wardle-flunder-js.wasm: $(wildcard examples/wardle-flunder-js/*.js) $(JS_SDK) $(WIT) $(JS_TOOLS)
	@mkdir -p $(dir $@)
	node guests/js/build.mjs examples/wardle-flunder-js/flunder.js $@

target/test-plugins/misbehave-js.wasm: $(wildcard guests/test-plugins/js/*.js) $(JS_SDK) $(WIT) $(JS_TOOLS)
	@mkdir -p $(dir $@)
	node guests/js/build.mjs guests/test-plugins/js/misbehave.js $@

## run: serve the example plugins on the embedded store, ready for kubectl. Builds only
## what it serves: the example plugins and the server (not the test plugins, not the
## Python and JavaScript toolchains unless HELLO asks for them).
## HELLO=python or HELLO=js serves that hello instead of the Rust one (same kind).
RUN_PLUGINS := wardle-flunder wardle-fischer $(if $(filter rust,$(HELLO)),hello)
run: setup-build
	@case "$(HELLO)" in rust|python|js) ;; *) echo "HELLO must be rust, python or js"; exit 2 ;; esac
	@echo "==> [1/3] building the example plugins ($(RUN_PLUGINS) devops) for $(WASM_TARGET)"
	$(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(RUN_PLUGINS))
	$(CARGO) build --profile guest --target $(WASM_TARGET) -p devops --examples
	@rm -rf target/run-plugins && mkdir -p target/run-plugins
	@for p in $(RUN_PLUGINS); do cp $(GUEST_OUT)/$$(echo $$p | tr - _).wasm target/run-plugins/$$p.wasm; done
	@for k in $(DEVOPS_KINDS); do cp $(GUEST_OUT)/examples/devops_$$k.wasm target/run-plugins/devops-$$k.wasm; done
	@if [ "$(HELLO)" != rust ]; then \
	  echo "==> [1/3] building hello in $(HELLO) (installs its toolchain on first use)"; \
	  $(MAKE) --no-print-directory $(LANG_OUT)/hello-$(HELLO).wasm && \
	  cp $(LANG_OUT)/hello-$(HELLO).wasm target/run-plugins/; fi
	@echo "==> [2/3] building the server"
	$(CARGO) build -p wasm-apiserver
	@echo "==> [3/3] serving target/run-plugins on https://127.0.0.1:$(PORT) (kubeconfig: $(DATA_DIR)/kubeconfig)"
	target/debug/wasm-apiserver --dev --plugin-dir target/run-plugins --data-dir $(DATA_DIR) \
	  --secure-port $(PORT) --write-kubeconfig $(DATA_DIR)/kubeconfig

## dev: like run, and rebuild an example plugin when its source changes; the server
## (hot reload is on with --dev) serves the new build within a second. Edit, save, kubectl.
dev: example-plugins
	$(CARGO) build -p wasm-apiserver
	@mkdir -p $(DATA_DIR)
	@target/debug/wasm-apiserver --dev --plugin-compiler winch --plugin-dir target/plugins \
	  --data-dir $(DATA_DIR) --secure-port $(PORT) --write-kubeconfig $(DATA_DIR)/kubeconfig & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT INT TERM; \
	touch $(DATA_DIR)/.dev-stamp; \
	echo "make dev: watching examples/*/src and guests/sdk/src; Ctrl-C stops"; \
	while kill -0 $$server 2>/dev/null; do \
	  sleep 0.5; \
	  changed=$$(find examples guests/sdk -name '*.rs' -newer $(DATA_DIR)/.dev-stamp | head -1); \
	  [ -z "$$changed" ] && continue; \
	  touch $(DATA_DIR)/.dev-stamp; echo "make dev: $$changed changed; rebuilding plugins"; \
	  $(CARGO) build --profile guest --target $(WASM_TARGET) $(addprefix -p ,$(PLUGINS)) && \
	  for p in $(PLUGINS); do cp $(GUEST_OUT)/$$(echo $$p | tr - _).wasm target/plugins/$$p.wasm.tmp && \
	    mv target/plugins/$$p.wasm.tmp target/plugins/$$p.wasm; done; \
	done

## test: unit tests (host, SDK, example plugins natively in Rust, CPython and Node) and
## the end-to-end suite (which runs one behaviour table against all three hellos).
test: plugins lang-unit-tests schemathesis py-kube-client lint
	$(CARGO) test -p wasm-apiserver -p structured-merge -p wasm-apiserver-tests -p wasm-apiserver-sdk -p hello -p wardle-flunder -p wardle-fischer -p devops

## schemathesis: the OpenAPI fuzzer the test suite runs (PyPI, into the tools venv).
SCHEMATHESIS := $(PY_TOOLS)/bin/schemathesis
schemathesis: $(SCHEMATHESIS)
$(SCHEMATHESIS): | $(COMPONENTIZE_PY)
	$(PY_TOOLS)/bin/pip install -q --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)

## py-kube-client: the Kubernetes Python client (PyPI, into the tools venv): a test
## applies with its dynamic client's server_side_apply.
PY_KUBE_VERSION := 33.1.0
PY_KUBE := $(PY_TOOLS)/.kubernetes-$(PY_KUBE_VERSION)
py-kube-client: $(PY_KUBE)
$(PY_KUBE): | $(COMPONENTIZE_PY)
	$(PY_TOOLS)/bin/pip install -q --disable-pip-version-check kubernetes==$(PY_KUBE_VERSION)
	touch $@

## lang-unit-tests: the Python and JavaScript examples' logic, natively (no Wasm).
lang-unit-tests: $(COMPONENTIZE_PY) $(JS_TOOLS)
	rm -rf target/py-bindings && $(COMPONENTIZE_PY) -d wit -w plugin bindings target/py-bindings
	for app in hello-python wardle-flunder-python; do \
	  PYTHONPATH=target/py-bindings:guests/python:examples/$$app \
	    $(PY_TOOLS)/bin/python -m unittest discover -s examples/$$app || exit 1; done
	node --import ./guests/js/test-host.mjs --test examples/hello-js/*.test.mjs \
	  examples/wardle-flunder-js/*.test.mjs

## bench: the benchmark harness (release build); prints a table. `-- outside` drives
## the server with h2load (Debian's nghttp2-client), installed here when missing.
bench: plugins
	@command -v h2load >/dev/null || { \
	  echo "==> installing nghttp2-client (apt-get) for h2load"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nghttp2-client >/dev/null; }
	$(CARGO) bench -p wasm-apiserver-tests

## lint: formatting and clippy with warnings denied (make test runs it first).
lint: setup-build
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p wasm-apiserver -p wasm-apiserver-tests -p wasm-apiserver-sdk -p structured-merge --all-targets -- -D warnings

clean:
	$(CARGO) clean
