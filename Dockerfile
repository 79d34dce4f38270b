# Estuary container image.
#
#   docker build -t estuary .
#   docker run -v /etc/estuary:/etc/estuary:ro -v estuary-data:/var/lib/estuary estuary
#
# Node 24 runs the TypeScript sources directly (type stripping): no build step,
# so the image is the sources plus production dependencies. The `node` npm
# package that pins Node 24 for npm scripts is a devDependency and is left out:
# the base image provides Node 24.

# --- dependencies ------------------------------------------------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Exactly the lock file, production dependencies only. No install scripts: no
# production dependency needs one (SQLite is Node's built-in node:sqlite).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime -----------------------------------------------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    # Two malloc arenas, as deploy/systemd/estuary.service (bench/soak).
    MALLOC_ARENA_MAX=2 \
    # The HEALTHCHECK below asks this URL; it must match the config's http
    # section (host/port). Set it empty when the config has no http section.
    ESTUARY_HEALTH_URL=http://127.0.0.1:8080/health
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY core ./core
COPY adapters ./adapters
COPY config ./config
# State (SQLite store, media files) lives in a volume owned by the unprivileged user.
RUN mkdir -p /var/lib/estuary /etc/estuary && chown node:node /var/lib/estuary
VOLUME ["/var/lib/estuary"]
USER node
# Relative paths in the config (sqlite:./estuary.sqlite, ./estuary-media) land in the volume.
WORKDIR /var/lib/estuary

# /health answers 200 while every component stream is online, 503 otherwise
# (core/http/server.ts). Node's fetch: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const u=process.env.ESTUARY_HEALTH_URL;if(!u)process.exit(0);fetch(u,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM (docker stop) is handled: users are told the gateway is leaving.
STOPSIGNAL SIGTERM
# --max-semi-space-size=2: see deploy/systemd/estuary.service.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/estuary.js"]
CMD ["--config", "/etc/estuary/estuary.yaml"]
