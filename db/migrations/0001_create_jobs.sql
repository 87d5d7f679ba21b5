-- The jobs table: written by other teams (INSERT) and by ETL (COPY); followed by budget-cdc through logical replication.
create table if not exists jobs (
  id          bigint generated always as identity primary key,
  job_id      text not null unique,
  days_online integer not null check (days_online between 1 and 3650),
  budget      numeric(14,2) not null check (budget >= 0),
  created_at  timestamptz not null default now()
);

-- UPDATE and DELETE must carry the old job_id so that a renamed or deleted job's key can be removed.
-- FULL rather than USING INDEX: with an index identity, an UPDATE that keeps a long (TOASTed) job_id
-- sends it as "unchanged" and the new key could not be named; FULL always logs the old row in full.
alter table jobs replica identity full;
