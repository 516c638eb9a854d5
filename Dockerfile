# The wasm-apiserver image: the server and the example plugins.
#   docker build -t wasm-apiserver:latest .
# `wasm-apiserver manifests --image wasm-apiserver:latest` deploys it; the Deployment's
# init container copies /opt/wasm-apiserver/plugins into the plugins volume.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release -p wasm-apiserver \
    && cargo build --profile guest --target wasm32-wasip2 -p hello -p wardle-flunder -p wardle-fischer \
    && mkdir -p /out/plugins \
    && cp target/release/wasm-apiserver /out/ \
    && for p in hello wardle_flunder wardle_fischer; do \
         cp target/wasm32-wasip2/guest/$p.wasm /out/plugins/$(echo $p | tr _ -).wasm; done

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/wasm-apiserver /usr/local/bin/wasm-apiserver
COPY --from=build /out/plugins /opt/wasm-apiserver/plugins
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wasm-apiserver"]
CMD ["--plugin-dir=/opt/wasm-apiserver/plugins", "--data-dir=/data"]
