# keel-agent: the compute agent of one host. In a container it runs the fake driver
# (--driver fake); the libvirt driver needs libvirtd and QEMU, which this image does not have.
# State: /var/lib/keel/agent (mount a volume there). Ports: 8776 agent API, 7946 gossip.
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
# The state directories /var/lib/keel and /var/lib/keel/agent, owned by
# keel: a named volume mounted on one starts with this owner.
COPY --chown=65532:65532 state/ /var/lib/keel/
COPY bin/keel-agent /usr/local/bin/keel-agent
LABEL org.opencontainers.image.title="keel-agent" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/keel-cloud/keel"
ENV KEEL_STATE_DIR=/var/lib/keel/agent
USER 65532:65532
WORKDIR /var/lib/keel
ENTRYPOINT ["/usr/local/bin/keel-agent"]
