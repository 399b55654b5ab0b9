# Our collector distribution, built with ocb from collector/manifest.yaml.
# Build context: the repository root (see compose.observability.yaml).
ARG GO_IMAGE
ARG COLLECTOR_BASE_IMAGE
FROM ${GO_IMAGE} AS build
ARG OTELCOL_BUILDER_VERSION
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go install go.opentelemetry.io/collector/cmd/builder@v${OTELCOL_BUILDER_VERSION}
WORKDIR /src
COPY collector/manifest.yaml collector/manifest.yaml
# output_path in the manifest is ./collector/_build, relative to this directory.
RUN builder --config=collector/manifest.yaml

# busybox rather than distroless: the healthcheck needs wget.
FROM ${COLLECTOR_BASE_IMAGE}
COPY --from=build /src/collector/_build/otelcol-trading /otelcol-trading
COPY collector/config /etc/otelcol
USER 10001
EXPOSE 4317 4318 8888 8889 13133
ENTRYPOINT ["/otelcol-trading"]
CMD ["--config=/etc/otelcol/common.yaml", "--config=/etc/otelcol/gateway.yaml"]
