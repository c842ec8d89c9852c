"""A schema registry speaking the Confluent Schema Registry REST API, for Avro schemas.

Modules: ``errors`` (Confluent error codes), ``parsing`` (schema text and identity),
``compat`` (compatibility levels over ``avro.compatibility``), ``store`` (SQLite),
``service`` (registry semantics), ``web`` and ``app`` (HTTP), ``__main__`` (the server).
"""
