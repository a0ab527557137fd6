# The cdpload image: the static binaries `make build` made (CGO_ENABLED=0, -trimpath,
# the version stamped), the CA bundle, nothing else. Build it with `make image`, which
# copies the bundle into bin/ and uses docker or buildah, whichever is there.
#
#   docker run --rm -e CDP_TOKEN -v /data:/data cdpload:VERSION load /data/profiles.csv
#
# BASE may name a distroless static image instead of scratch
# (--build-arg BASE=gcr.io/distroless/static-debian12:nonroot).
ARG BASE=scratch
FROM ${BASE}

ARG VERSION=dev
ARG SOURCE=
ARG REVISION=
# No licence is declared yet: NOASSERTION is SPDX for "not stated".
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="cdpload" \
      org.opencontainers.image.description="Loads customer profiles from CSV and JSONL files into the Experiture CDP, resumably" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}"

COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/cdpload bin/cdpemu /

# Not root: the IDs distroless calls nonroot. Mounted volumes for the input, the
# checkpoint and the rejects must be readable and writable by them (fsGroup 65532).
USER 65532:65532
WORKDIR /data
ENTRYPOINT ["/cdpload"]
CMD ["--help"]
