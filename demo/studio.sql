-- Demo source tables of the studio domain (database "studio").
CREATE TABLE IF NOT EXISTS public.movies (
    id           bigint PRIMARY KEY,
    title        text NOT NULL,
    status       text NOT NULL,
    release_year integer,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.productions (
    id       bigint PRIMARY KEY,
    movie_id bigint NOT NULL REFERENCES public.movies (id),
    stage    text NOT NULL,
    location text,
    budget   numeric(14, 2)
);
-- CDC needs complete before-images (and unchanged TOAST values): see datamesh/cdc/README.md.
ALTER TABLE public.movies REPLICA IDENTITY FULL;
ALTER TABLE public.productions REPLICA IDENTITY FULL;
INSERT INTO public.movies (id, title, status, release_year) VALUES
    (1, 'Red Notice', 'released', 2021),
    (2, 'The Gray Man', 'released', 2022),
    (3, 'Glass Onion', 'post', 2022),
    (4, 'Rebel Moon', 'production', NULL)
ON CONFLICT (id) DO NOTHING;
INSERT INTO public.productions (id, movie_id, stage, location, budget) VALUES
    (10, 3, 'editing', 'Los Angeles', 40000000.00),
    (11, 4, 'principal photography', 'Albuquerque', 83000000.00)
ON CONFLICT (id) DO NOTHING;
