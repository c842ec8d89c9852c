"""The data product catalog: ``mesh catalog search <words>`` and ``mesh catalog show <product>``.

Contract:

- ``add_parser(subparsers)`` registers ``catalog`` on ``mesh``'s sub-commands;
  ``run(args, products, health=None) -> int`` prints a text table or JSON (``--json``) and
  returns 0, or 1 with ``error: ... — fix: did you mean ...?`` on stderr for an unknown product.
- ``ranking.index(products) -> Index`` tokenizes every product once (names, ids, descriptions,
  owners, domains, tags incl. access/tier/kind, field names and docs of the effective schema);
  ``ranking.search(index, query, limit) -> list[Result]`` ranks from the postings alone.
- ``card.card(product, products) -> Card`` is what ``show`` prints.
- ``health`` (a :data:`health.HealthLookup`) gives each product's last SLO check results in
  ``mesh dev``'s Dagster instance (``ok``, ``failing: <checks>``, or ``unknown``); the CLI
  passes :func:`mesh_assets.cli_entry.catalog_health`, without one every product is
  ``unknown``: the catalog never guesses.

Ranking and cards are pure functions of the loaded, frozen products; only the health lookup
reads the Dagster instance's storage (this package imports no Dagster code), and no service is
contacted.
"""

from datamesh.catalog.command import add_arguments, add_parser, run

__all__ = ["add_arguments", "add_parser", "run"]
