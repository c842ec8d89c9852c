-- A daily bucket per region, kept as an updating aggregate rather than a window TVF: the input
-- is a CDC changelog (a production moves region, changes its start date, is deleted), and an
-- event-time window would drop the changes that arrive after its day closed.
-- COALESCE: the WHERE already drops NULL days, but Flink types the column nullable without it.
SELECT COALESCE(p.started_on, DATE '1970-01-01') AS started_on,
       COALESCE(p.region, 'unknown') AS region,
       COUNT(p.id) AS productions, SUM(p.budget) AS budget
FROM `studio.productions` AS p
WHERE p.started_on IS NOT NULL
GROUP BY COALESCE(p.started_on, DATE '1970-01-01'), COALESCE(p.region, 'unknown')
