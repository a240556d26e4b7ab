# syntax=docker/dockerfile:1
# rollouts-controller and kubectl-rollouts in a minimal image: a release build in the Rust
# image, then only the two binaries on distroless (glibc, CA certificates, no shell, no
# package manager), running as the unprivileged user 65532.
#
#   docker build -t rollouts-controller:0.1.0 .
#   helm install rollouts charts/rollouts -n rollouts --create-namespace \
#     --set image.repository=<registry>/rollouts-controller

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p rollouts --bin rollouts-controller --bin kubectl-rollouts \
    && mkdir -p /out \
    && cp target/release/rollouts-controller target/release/kubectl-rollouts /out/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/rollouts-controller /out/kubectl-rollouts /usr/local/bin/
USER 65532:65532
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/rollouts-controller"]
CMD ["run"]
