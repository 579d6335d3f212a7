# syntax=docker/dockerfile:1
# RemoteMedia: a Rust build stage for the native engine and the TypeScript, then a slim Node runtime.

# ---- build: Node 20 + a pinned Rust toolchain; `npm ci` builds the addon (release, fat LTO, x86-64-v3) ----
FROM node:20-bookworm AS build
ARG RUST_VERSION=1.95.0
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain "$RUST_VERSION" \
 && rustc --version
# CMake builds libopus from its bundled source (the opusic-sys crate) into the addon.
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
COPY .cargo ./.cargo
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# The `prepare` script builds native/binding/*.node and dist/.
RUN npm ci && npm prune --omit=dev \
 && rm -rf native/target

# ---- runtime: no compilers, non-root, data on a volume ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 RT_PORT=8081 DATA_DIR=/data LOG_LEVEL=info
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/binding/package.json /app/native/binding/index.js /app/native/binding/index.d.ts ./native/binding/
COPY --from=build /app/native/binding/*.node ./native/binding/
COPY public ./public
COPY examples ./examples
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Pinning needs the container to be allowed all the cores it is given (e.g. --cpuset-cpus); it is
# reported, not fatal, when it fails.
# The Node flags of src/node-flags.ts (docs/configuration.md, "Node flags"): no memory reducer (its heap
# shrinking pauses the process for 10-20 ms at a time, which telephony playback pacing cannot absorb), and
# a 128 MB first limit for the old generation (sessions opening together no longer each pay a full collection),
# and no allocation-site pretenuring (it sent ws's per-message objects to the old generation: a full collection
# every 0.7 s on the main port).
ENTRYPOINT ["node", "--no-memory-reducer", "--initial-old-space-size=128", "--no-allocation-site-pretenuring", "dist/cli.js"]
CMD ["serve"]
