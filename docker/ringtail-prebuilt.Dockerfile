# The runtime stage of ../Dockerfile for a ringtail binary already built on a Debian bookworm
# host (the CI's Release build): the context holds `ringtail`, `runtime-packages` (the Debian
# packages owning the libraries it links against, from ldd and dpkg -S on that host) and
# `healthcheck`. scripts/docker-lib.bash makes that context; keep this in step with Dockerfile.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
COPY runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends $(grep -v '^libc6$' /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/runtime-packages \
 && useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin ringtail \
 && mkdir -p /data && chown ringtail:ringtail /data
COPY ringtail /usr/local/bin/ringtail
COPY healthcheck /usr/local/bin/healthcheck
USER ringtail
WORKDIR /data
VOLUME /data
# HTTP, ingester RPC, ring gossip
EXPOSE 9009 9095 7946
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/healthcheck", "9009", "/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ringtail"]
CMD ["-target=all", "-ingester.data-dir=/data"]
