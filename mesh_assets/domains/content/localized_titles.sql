SELECT m.id AS movie_id, a.locale, m.title, a.url AS artwork_url
FROM `studio.movies` AS m
JOIN `content.artwork` AS a ON a.movie_id = m.id
