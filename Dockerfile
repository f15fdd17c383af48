# Ringtail image: a build stage compiles the `ringtail` binary (Release), a slim runtime stage
# holds it with only the shared libraries it links against.
#
#   docker build -t ringtail .                                   # FROM debian:bookworm-slim
#   scripts/docker-base.sh && \
#   docker build --build-arg BASE=ringtail-base:bookworm -t ringtail .   # without a registry
#
# See docs/docker.md.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# The build packages are the ones scripts/install-deps.sh names for a build without the tests
# (RT_DEPS_MINIMAL=1): one list for a machine and for the image. Copied alone, so that this
# layer is rebuilt only when the list changes.
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN RT_DEPS_MINIMAL=1 /tmp/install-deps.sh \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/install-deps.sh
WORKDIR /src
# .dockerignore keeps tests, docs and build directories out: only what the binary is made of.
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRT_TESTS=OFF >/dev/null \
 && cmake --build build -j"$(nproc)" --target ringtail \
 && mkdir /out && strip -o /out/ringtail build/ringtail
# The runtime packages: the Debian packages that own the libraries the binary links against.
RUN ldd /out/ringtail | awk '/=> \//{print $3}' | while read -r lib; do \
      dpkg -S "*/$(basename "$lib")" | cut -d: -f1; done | sort -u >/out/runtime-packages \
 && cat /out/runtime-packages

# The runtime stage (docker/ringtail-prebuilt.Dockerfile repeats it for a binary built outside).
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends $(grep -v '^libc6$' /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/runtime-packages \
 && useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin ringtail \
 && mkdir -p /data && chown ringtail:ringtail /data
COPY --from=build /out/ringtail /usr/local/bin/ringtail
COPY docker/healthcheck /usr/local/bin/healthcheck
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
