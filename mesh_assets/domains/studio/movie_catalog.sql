SELECT m.id AS movie_id, m.title, m.status, p.stage, p.location
FROM `studio.movies` AS m
LEFT JOIN `studio.productions` AS p ON p.movie_id = m.id
