# A small static image: the provider binary on distroless/static, run as a
# non-root user, the database and keys in the /data volume, the config
# mounted read-only at /etc/provider/config.yaml. Build and run:
#   docker build -t provider .
#   docker run -d -p 8080:8080 -v provider-data:/data \
#     -v $PWD/config.yaml:/etc/provider/config.yaml:ro provider
# The config must listen on 0.0.0.0:8080 (not loopback) and keep its
# database and keys in /data:
#   listen: 0.0.0.0:8080
#   storage: {bolt: /data/provider.db}
#   keys: {dir: /data/keys}

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# docker build --build-arg VERSION=v1.2.3 names the release in
# `provider version` and the build_info metric.
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/smallsso/provider/provider/buildinfo.Version=${VERSION}" \
      -o /out/provider ./cmd/provider \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/provider /usr/local/bin/provider
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/provider"]
CMD ["serve", "--config", "/etc/provider/config.yaml"]
