"""A schema registry speaking the Confluent Schema Registry REST API, for Avro schemas.

Modules: ``errors`` (Confluent error codes), ``parsing`` (schema text and identity),
``compat`` (checks over ``avro.compatibility``), ``levels`` (configured levels),
``store`` (SQLite), ``service`` (registry semantics), ``web`` and ``app`` (HTTP) and
``__main__`` (the server process).
"""
