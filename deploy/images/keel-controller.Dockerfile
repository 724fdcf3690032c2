# keel-controller: one controller of a Keel cluster (Raft peer, gossip member, HTTP API).
# Data: /var/lib/keel (mount a volume there). Ports: 8774 API, 7000 Raft, 7946 gossip (TCP+UDP).
#
# Built by deploy/build-images.sh from a context it stages itself: the static
# binary (CGO_ENABLED=0) in bin/ and a minimal root filesystem in rootfs/.
# FROM scratch pulls nothing, so the build works without an image registry;
# the binary is static and speaks plain HTTP, so the image needs no shared
# libraries, CA certificates or time zone files.
FROM scratch
ARG VERSION=dev
# /etc/passwd and /etc/group (root, keel 65532, nobody) and /tmp (mode 1777).
COPY rootfs/ /
# The data directory /var/lib/keel, owned by keel: a named
# volume mounted on it starts with this owner.
COPY --chown=65532:65532 state/ /var/lib/keel/
COPY bin/keel-controller /usr/local/bin/keel-controller
LABEL org.opencontainers.image.title="keel-controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/keel-cloud/keel"
ENV KEEL_DATA_DIR=/var/lib/keel
USER 65532:65532
WORKDIR /var/lib/keel
ENTRYPOINT ["/usr/local/bin/keel-controller"]
