"""PostgreSQL change data capture into Kafka: pgoutput streaming plus DBLog snapshots.

One connector process per source database (``python -m datamesh.cdc``, started by
:mod:`datamesh.cdc.supervisor`) follows a logical replication slot with the built-in
``pgoutput`` plugin and publishes Debezium-compatible, Confluent-framed Avro events to
``<domain>.<schema>.<table>``, keyed by primary key.

Guarantees and choices (details in each module):

- **At least once, in order per key.** The slot's confirmed LSN only moves past a transaction
  once Kafka acknowledged all its events (:mod:`.delivery`); restarts resume from the slot.
- **Snapshots without locks** by DBLog watermarks (:mod:`.dblog`, :mod:`.snapshot`), initial or
  on demand, for a table or a ``--where`` key range, resumable after a crash.
- **Tables taken as they are** (:mod:`.identity`): REPLICA IDENTITY DEFAULT gives Debezium's
  key-only (or null) ``before`` and its ``__debezium_unavailable_value`` for unchanged TOAST
  values (:mod:`.unavailable`); FULL, the richer choice (``--set-replica-identity`` sets it),
  gives complete ``before`` images and fills unchanged TOAST values from them.
- **Schema changes** register the next schema version; an incompatible one (HTTP 409) pauses
  only that table, holding the slot at the last commit before it (:mod:`.tables`).
- **Hand-rolled Avro encoding** of pgoutput's text values, byte-identical to
  ``AvroSerializer`` but several times faster (:mod:`.avro_binary`, :mod:`.codec`).
"""
