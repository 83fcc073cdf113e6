-- 100,000 provider plans (every 5 minutes from 2021-01-01, one in ten offline) for bench/search.sh.
INSERT INTO provider_plans (provider, base_plan_id, plan_id, id, title, starts_at, ends_at, min_price, max_price, sell_mode, ever_online, content_hash, data, first_seen, last_seen)
SELECT 'fever', (g / 3)::text, g::text, gen_random_uuid(), 'Plan ' || g,
       timestamp '2021-01-01' + (g * interval '5 minutes'),
       timestamp '2021-01-01' + (g * interval '5 minutes') + interval '90 minutes',
       10.00 + (g % 50), 60.00 + (g % 50), CASE WHEN g % 10 = 0 THEN 'offline' ELSE 'online' END,
       g % 10 <> 0, md5(g::text), '{}'::jsonb, now(), now()
FROM generate_series(1, 100000) AS g;
VACUUM ANALYZE provider_plans;  -- as autovacuum would: index-only scans need the visibility map
