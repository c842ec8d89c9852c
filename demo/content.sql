-- Demo source tables of the content domain (database "content").
CREATE TABLE IF NOT EXISTS public.artwork (
    id       bigint PRIMARY KEY,
    movie_id bigint NOT NULL,
    locale   text NOT NULL,
    url      text NOT NULL
);
ALTER TABLE public.artwork REPLICA IDENTITY FULL;
INSERT INTO public.artwork (id, movie_id, locale, url) VALUES
    (100, 1, 'en-US', 'https://art.example.com/1/en-US.jpg'),
    (101, 1, 'fr-FR', 'https://art.example.com/1/fr-FR.jpg'),
    (102, 2, 'en-US', 'https://art.example.com/2/en-US.jpg')
ON CONFLICT (id) DO NOTHING;
