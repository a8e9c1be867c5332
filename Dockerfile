# certify and the reference runtime in one small image:
#   docker build -t certify .
#   docker run --rm certify run                                   # the built-in spec
#   docker run --rm --network host certify run --sidecar http://127.0.0.1:3500 --state statestore
#   docker run --rm -p 3500:3500 --entrypoint reference-runtime certify --dapr-listen-addresses 0.0.0.0
# Multi-stage: the official Rust image builds, Debian slim ships only the two binaries.
FROM rust:1-bookworm AS build
# librdkafka is built from its bundled sources (gcc and make come with the image; cmake does not).
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p harness --bin certify -p reference-runtime --bin reference-runtime

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/certify /src/target/release/reference-runtime /usr/local/bin/
WORKDIR /work
ENTRYPOINT ["certify"]
CMD ["run"]
