# proglab as a container image (docs/deploy.md, "A container image").
#   docker build -t proglab .
#   docker run -p 8080:8080 -v proglab-data:/var/lib/proglab proglab
# The binary carries the browser code, the templates, the bundled tasks and studies, and the
# migrations, so the runtime image needs nothing but the C library.

# ---- build ----
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p server --bin proglab \
    && strip target/release/proglab

# ---- run ----
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/proglab --create-home proglab
COPY --from=build /src/target/release/proglab /usr/local/bin/proglab
USER proglab
WORKDIR /var/lib/proglab
ENV PROGLAB_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/proglab/proglab.db \
    PROGLAB_LOG_FORMAT=json
VOLUME ["/var/lib/proglab"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/proglab"]
CMD ["serve"]
