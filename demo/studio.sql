-- Demo source tables of the studio domain (database "studio").
CREATE TABLE IF NOT EXISTS public.movies (
    id           bigint PRIMARY KEY,
    title        text NOT NULL,
    status       text NOT NULL,
    release_year integer,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.productions (
    id         bigint PRIMARY KEY,
    movie_id   bigint NOT NULL REFERENCES public.movies (id),
    stage      text NOT NULL,
    location   text,
    budget     numeric(14, 2),
    region     text,
    started_on date
);
-- Databases seeded before productions had a region and a start date gain both.
ALTER TABLE public.productions ADD COLUMN IF NOT EXISTS region text;
ALTER TABLE public.productions ADD COLUMN IF NOT EXISTS started_on date;
CREATE TABLE IF NOT EXISTS public.talent (
    id       bigint PRIMARY KEY,
    movie_id bigint NOT NULL REFERENCES public.movies (id),
    name     text NOT NULL,
    role     text NOT NULL
);
-- CDC needs complete before-images (and unchanged TOAST values): see datamesh/cdc/README.md.
ALTER TABLE public.movies REPLICA IDENTITY FULL;
ALTER TABLE public.productions REPLICA IDENTITY FULL;
ALTER TABLE public.talent REPLICA IDENTITY FULL;
INSERT INTO public.movies (id, title, status, release_year) VALUES
    (1, 'Red Notice', 'released', 2021),
    (2, 'The Gray Man', 'released', 2022),
    (3, 'Glass Onion', 'post', 2022),
    (4, 'Rebel Moon', 'production', NULL)
ON CONFLICT (id) DO NOTHING;
INSERT INTO public.productions (id, movie_id, stage, location, budget, region, started_on) VALUES
    (10, 3, 'editing', 'Los Angeles', 40000000.00, 'UCAN', DATE '2021-06-28'),
    (11, 4, 'principal photography', 'Albuquerque', 83000000.00, 'UCAN', DATE '2021-04-19')
ON CONFLICT (id) DO NOTHING;
INSERT INTO public.talent (id, movie_id, name, role) VALUES
    (20, 1, 'Rawson Marshall Thurber', 'director'),
    (21, 3, 'Rian Johnson', 'director'),
    (22, 4, 'Zack Snyder', 'director')
ON CONFLICT (id) DO NOTHING;
