# keelctl: the operator CLI (an HTTP client of the controllers).
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
# A working directory owned by keel (for files keelctl writes, e.g.
# snapshot save; mount a volume or a host directory to keep them).
COPY --chown=65532:65532 state/ /var/lib/keel/
COPY bin/keelctl /usr/local/bin/keelctl
LABEL org.opencontainers.image.title="keelctl" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/keel-cloud/keel"
USER 65532:65532
WORKDIR /var/lib/keel
ENTRYPOINT ["/usr/local/bin/keelctl"]
