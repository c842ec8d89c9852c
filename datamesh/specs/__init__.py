"""Data product declarations: the YAML model, the resolved product, and the loader."""

from datamesh.specs.loader import load_products
from datamesh.specs.product import DataProduct, Slo, TopicSettings

__all__ = ["DataProduct", "Slo", "TopicSettings", "load_products"]
