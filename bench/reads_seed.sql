-- Seed for bench/reads.sh: :rows events of application `bench` over 100 sessions and 20
-- types, timestamps one second apart from 2024-01-01, stored over the last 91 days. With
-- the partitioned schema, laid out as a deployment 13 weeks in would be: `events_initial`
-- up to 91 days ago, then one partition per week (EYE_PARTITION_DAYS=7) up to today, then
-- the partitions ahead; the ids go to `event_ids` as the worker writes them.
\set ON_ERROR_STOP on
SELECT to_regclass('event_ids') IS NOT NULL AS partitioned \gset
TRUNCATE events;
\if :partitioned
TRUNCATE event_ids;
DO $$
DECLARE
    today timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    start timestamptz := today - interval '91 days';
    p record;
BEGIN
    FOR p IN SELECT name FROM event_partitions WHERE from_at IS NULL OR from_at < today LOOP
        EXECUTE format('ALTER TABLE events DETACH PARTITION %I', p.name);
        EXECUTE format('DROP TABLE %I', p.name);
    END LOOP;
    EXECUTE format('CREATE TABLE events_initial PARTITION OF events FOR VALUES FROM (MINVALUE) TO (%L)', start);
    FOR w IN 0..12 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            'events_p' || to_char((start + w * interval '7 days') AT TIME ZONE 'UTC', 'YYYYMMDD'),
            start + w * interval '7 days', start + (w + 1) * interval '7 days');
    END LOOP;
END
$$;
\endif
INSERT INTO events (app_id, id, session_id, category, name, data, "timestamp", source, received_at, stored_at)
SELECT 'bench',
       gen_random_uuid(),
       ('00000000-0000-4000-8000-' || lpad(to_hex(i % 100), 12, '0'))::uuid,
       'category ' || (i % 4),
       'name ' || (i % 5),
       jsonb_build_object('host', 'www.example.com', 'path', '/' || i),
       timestamptz '2024-01-01' + (i || ' seconds')::interval,
       'http', now(),
       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '91 days'
           + (i::float8 / :rows) * interval '91 days'
FROM generate_series(1, :rows) AS i;
\if :partitioned
INSERT INTO event_ids (app_id, id, stored_at) SELECT app_id, id, stored_at FROM events;
\endif
VACUUM ANALYZE events;
