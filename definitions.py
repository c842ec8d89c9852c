"""The Dagster code location: declarations in, assets, sensors and resources out.

Loading validates every declaration (a bad one raises SpecError naming file, field and fix) and
does no network I/O; endpoints are resolved when a run or sensor tick needs them.
"""

import dagster as dg

from datamesh.specs import load_products
from mesh_assets import build_assets, domains_dir
from mesh_assets.audit import build_audit_checks, build_audit_jobs
from mesh_assets.checks import build_checks
from mesh_assets.drift import build_drift_checks
from resources import resources_for
from sensors import build_sensors

products = load_products(domains_dir())

defs = dg.Definitions(
    assets=build_assets(products),
    asset_checks=[
        *build_checks(products),
        *build_drift_checks(products),
        *build_audit_checks(products),
    ],
    jobs=build_audit_jobs(products),
    sensors=build_sensors(products),
    resources=resources_for(),
    # One process per run, its steps in it: a step process per asset and check (the default)
    # costs a Python start and a definitions load each, which on a small machine made the
    # first start of the demo's streaming products take minutes.
    executor=dg.in_process_executor,
)
