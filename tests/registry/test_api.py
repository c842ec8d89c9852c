"""The REST API through the real Confluent client and raw HTTP, against a real server process."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from .helpers import MEDIA_TYPE, call, enum, error_code, field, record, register, set_level

NewSubject = Callable[[str], str]

V1 = record(field("id", "long"), field("name", "string"), name="User")
V2 = record(
    field("id", "long"),
    field("name", "string"),
    field("email", ["null", "string"], default=None),
    name="User",
)
V2_NO_DEFAULT = record(
    field("id", "long"), field("name", "string"), field("email", "string"), name="User"
)


def avro(text: str) -> Schema:
    return Schema(text, "AVRO")


def text_of(client: SchemaRegistryClient, schema_id: int) -> Any:
    """The parsed JSON of the schema the client fetches for ``schema_id``."""
    text = client.get_schema(schema_id).schema_str
    assert text is not None
    return json.loads(text)


def test_root_and_media_type(registry_url: str) -> None:
    response = requests.get(f"{registry_url}/", timeout=10)
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["content-type"].startswith(MEDIA_TYPE)


def test_register_and_read_back(client: SchemaRegistryClient, new_subject: NewSubject) -> None:
    subject = new_subject("users-value")
    first = client.register_schema(subject, avro(V1))
    second = client.register_schema(subject, avro(V2))
    assert second != first
    assert text_of(client, first) == json.loads(V1)
    latest = client.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 2, second)
    assert client.get_versions(subject) == [1, 2]
    found = client.lookup_schema(subject, avro(V1))
    assert (found.version, found.schema_id) == (1, first)
    assert client.get_version(subject, 1).schema_id == first
    assert subject in client.get_subjects()


def test_reregistering_returns_existing_id_without_new_version(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("again")
    schema_id = client.register_schema(subject, avro(V1))
    # Different whitespace and key order: the same schema, so the same id and no new version.
    reformatted = json.dumps(json.loads(V1), indent=4, sort_keys=True)
    assert register(registry_url, subject, reformatted).json() == {"id": schema_id}
    assert register(registry_url, subject, V1).json() == {"id": schema_id}
    assert client.get_versions(subject) == [1]


def test_same_schema_same_id_across_subjects(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    text = record(field("x", "int"), name="Shared")
    subjects = [new_subject("shared") for _ in range(3)]
    ids = {client.register_schema(subject, avro(text)) for subject in subjects}
    assert len(ids) == 1
    (schema_id,) = ids
    usages = call("GET", registry_url, f"/schemas/ids/{schema_id}/versions").json()
    assert sorted(usages, key=lambda u: u["subject"]) == [
        {"subject": s, "version": 1} for s in sorted(subjects)
    ]
    assert sorted(client.get_subjects_by_schema_id(schema_id)) == sorted(subjects)


def test_a_default_makes_a_different_schema(
    client: SchemaRegistryClient, new_subject: NewSubject
) -> None:
    # Parsing Canonical Form would equate these two; the registry must not (see parsing.py).
    plain = record(field("a", "int"), field("b", "int"), name="Dflt")
    with_default = record(field("a", "int"), field("b", "int", default=7), name="Dflt")
    id_plain = client.register_schema(new_subject("d1"), avro(plain))
    id_default = client.register_schema(new_subject("d2"), avro(with_default))
    assert id_plain != id_default
    assert text_of(client, id_default)["fields"][1]["default"] == 7


def test_incompatible_schema_is_refused_with_reason(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("strict")
    client.register_schema(subject, avro(V1))
    response = register(registry_url, subject, V2_NO_DEFAULT)
    assert response.status_code == 409
    assert error_code(response) == 409
    message = response.json()["message"]
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in message and "'email'" in message
    assert client.get_versions(subject) == [1]
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, avro(V2_NO_DEFAULT))
    assert caught.value.error_code == 409


def test_compatibility_endpoint(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("compat")
    client.register_schema(subject, avro(V1))
    assert client.test_compatibility(subject, avro(V2)) is True
    assert client.test_compatibility(subject, avro(V2_NO_DEFAULT), version=1) is False
    path = f"/compatibility/subjects/{subject}/versions/latest"
    verbose = call("POST", registry_url, path, {"schema": V2_NO_DEFAULT}, verbose="true").json()
    assert verbose["is_compatible"] is False
    assert any("email" in message for message in verbose["messages"])
    quiet = call("POST", registry_url, path, {"schema": V2}).json()
    assert quiet == {"is_compatible": True}
    all_versions = call(
        "POST",
        registry_url,
        f"/compatibility/subjects/{subject}/versions",
        {"schema": V2_NO_DEFAULT},
    ).json()
    assert all_versions == {"is_compatible": False}
    # Nothing registered yet: "latest" is trivially compatible (Confluent does the same).
    fresh = f"/compatibility/subjects/{new_subject('empty')}/versions/latest"
    assert call("POST", registry_url, fresh, {"schema": V1}).json() == {"is_compatible": True}


def test_subject_compatibility_config(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("cfg")
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_compatibility(subject)
    assert caught.value.error_code == 40408
    global_level = client.get_compatibility()
    default = call("GET", registry_url, f"/config/{subject}", defaultToGlobal="true").json()
    assert default == {"compatibilityLevel": global_level}
    # The client is annotated "-> str" but hands back the response body, as Confluent sends it.
    answer: object = client.set_compatibility(subject, "full_transitive")
    assert answer == {"compatibility": "FULL_TRANSITIVE"}
    assert client.get_compatibility(subject) == "FULL_TRANSITIVE"
    deleted = call("DELETE", registry_url, f"/config/{subject}")
    assert deleted.json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert error_code(call("GET", registry_url, f"/config/{subject}")) == 40408


def test_subject_level_overrides_global_for_registration(
    client: SchemaRegistryClient, new_subject: NewSubject
) -> None:
    subject = new_subject("none")
    client.register_schema(subject, avro(V1))
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, avro(record(field("other", "boolean"), name="Else")))
    assert client.get_versions(subject) == [1, 2]


def test_global_config_roundtrip(registry_url: str) -> None:
    original = call("GET", registry_url, "/config").json()["compatibilityLevel"]
    try:
        put = call("PUT", registry_url, "/config", {"compatibility": "forward"})
        assert put.json() == {"compatibility": "FORWARD"}
        assert call("GET", registry_url, "/config").json() == {"compatibilityLevel": "FORWARD"}
        reset = call("DELETE", registry_url, "/config").json()
        assert reset == {"compatibilityLevel": "FORWARD"}
        assert call("GET", registry_url, "/config").json() == {"compatibilityLevel": "BACKWARD"}
    finally:
        call("PUT", registry_url, "/config", {"compatibility": original})


def test_soft_and_permanent_subject_delete(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("gone")
    schema_id = client.register_schema(subject, avro(V1))
    client.register_schema(subject, avro(V2))
    permanent_first = call("DELETE", registry_url, f"/subjects/{subject}", permanent="true")
    assert error_code(permanent_first) == 40405
    assert "was not deleted first before being permanently deleted" in permanent_first.text
    assert client.delete_subject(subject) == [1, 2]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert error_code(call("GET", registry_url, f"/subjects/{subject}/versions")) == 40401
    with_deleted = call("GET", registry_url, f"/subjects/{subject}/versions", deleted="true")
    assert with_deleted.json() == [1, 2]
    assert error_code(call("DELETE", registry_url, f"/subjects/{subject}")) == 40404
    # The id stays resolvable: data written with it may still sit in a topic.
    assert text_of(client, schema_id) == json.loads(V1)
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)
    assert error_code(call("DELETE", registry_url, f"/subjects/{subject}")) == 40401
    # Registering again after the permanent delete starts over, with the same schema id.
    assert client.register_schema(subject, avro(V1)) == schema_id
    assert client.get_versions(subject) == [1]


def test_soft_and_permanent_version_delete(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("ver")
    client.register_schema(subject, avro(V1))
    second = client.register_schema(subject, avro(V2))
    path = f"/subjects/{subject}/versions/2"
    assert error_code(call("DELETE", registry_url, path, permanent="true")) == 40407
    assert client.delete_version(subject, 2) == 2
    assert error_code(call("DELETE", registry_url, path)) == 40406
    assert client.get_versions(subject) == [1]
    assert error_code(call("GET", registry_url, path)) == 40402
    assert call("GET", registry_url, path, deleted="true").json()["id"] == second
    assert client.get_latest_version(subject).version == 1
    assert client.delete_version(subject, 2, permanent=True) == 2
    assert call("GET", registry_url, path, deleted="true").status_code == 404
    # Deleted versions do not count for compatibility: V2_NO_DEFAULT is checked against V1
    # only, and is still refused, while re-adding V2 makes version 2 again.
    assert register(registry_url, subject, V2_NO_DEFAULT).status_code == 409
    assert client.register_schema(subject, avro(V2)) == second


def test_soft_deleted_version_ignored_for_compatibility(
    client: SchemaRegistryClient, new_subject: NewSubject
) -> None:
    subject = new_subject("ignored")
    client.register_schema(subject, avro(record(field("a", "int"), name="T")))
    client.delete_version(subject, 1)
    # Would break BACKWARD against the deleted version 1 (type change), but it no longer counts.
    client.register_schema(subject, avro(record(field("a", "string"), name="T")))
    assert client.get_versions(subject) == [2]


def test_schema_by_id_endpoints(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("byid")
    schema_id = client.register_schema(subject, avro(V1))
    body = call("GET", registry_url, f"/schemas/ids/{schema_id}").json()
    assert set(body) == {"schema"}  # schemaType omitted for AVRO, as Confluent does
    assert json.loads(body["schema"]) == json.loads(V1)
    raw = call("GET", registry_url, f"/subjects/{subject}/versions/1/schema")
    assert raw.json() == json.loads(V1)
    assert call("GET", registry_url, "/schemas/types").json() == ["AVRO"]
    assert client.get_schema_types() == ["AVRO"]
    version = call("GET", registry_url, f"/subjects/{subject}/versions/1").json()
    assert set(version) == {"subject", "version", "id", "schema"}


def test_serializer_roundtrip_and_wire_format(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    topic = new_subject("topic")
    schema = record(
        field("id", "long"),
        field("name", "string"),
        field("color", enum(["RED", "GREEN"])),
        name="Event",
    )
    serializer = AvroSerializer(client, schema)
    deserializer = AvroDeserializer(client)
    value = {"id": 42, "name": "ada", "color": "GREEN"}
    context = SerializationContext(topic, MessageField.VALUE)
    payload = serializer(value, context)
    assert payload is not None
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    assert schema_id == client.get_latest_version(f"{topic}-value").schema_id
    # The body after the header is plain Avro binary: zigzag varint 42 -> 0x54, then the name.
    assert payload[5:6] == b"\x54"
    assert b"ada" in payload[5:]
    assert deserializer(payload, context) == value
    # A fresh client knows nothing: the deserializer must fetch the schema by id from the server.
    fresh = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    assert fresh(payload, context) == value


BAD_REQUESTS: list[tuple[str, str, Any, int, int]] = [
    ("GET", "/subjects/{unknown}/versions", None, 404, 40401),
    ("GET", "/subjects/{unknown}/versions/latest", None, 404, 40401),
    ("GET", "/subjects/{known}/versions/99", None, 404, 40402),
    ("GET", "/subjects/{known}/versions/0", None, 422, 42202),
    ("GET", "/subjects/{known}/versions/abc", None, 422, 42202),
    ("GET", "/subjects/{known}/versions/99999999999", None, 422, 42202),
    ("DELETE", "/subjects/{known}/versions/-5", None, 422, 42202),
    ("GET", "/schemas/ids/987654321", None, 404, 40403),
    ("GET", "/schemas/ids/notanumber", None, 404, 40403),
    ("GET", "/schemas/ids/987654321/versions", None, 404, 40403),
    ("POST", "/subjects/{known}", {"schema": record(field("zz", "int"), name="Nope")}, 404, 40403),
    ("POST", "/subjects/{unknown}", {"schema": V1}, 404, 40401),
    ("PUT", "/config", {"compatibility": "SIDEWAYS"}, 422, 42203),
    ("PUT", "/config/{known}", {"compatibility": 5}, 422, 42203),
    ("PUT", "/config/{known}", {}, 422, 42203),
    ("POST", "/subjects/{new}/versions", {"schema": "{not json"}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": '{"type": "nonsense"}'}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": '{"type": "record", "name": "R"}'}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": '{"type": {"nested": []}}'}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": '["int", "int"]'}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": 17}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": ""}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {}, 422, 42201),
    ("POST", "/subjects/{new}/versions", {"schema": V1, "schemaType": "PROTOBUF"}, 422, 42201),
    (
        "POST",
        "/subjects/{new}/versions",
        {"schema": V1, "references": [{"name": "x", "subject": "y", "version": 1}]},
        422,
        42201,
    ),
    ("POST", "/subjects/{new}/versions", [1, 2], 400, 400),
    ("POST", "/compatibility/subjects/{known}/versions/7", {"schema": V1}, 404, 40402),
    ("POST", "/compatibility/subjects/{known}/versions/latest", {"schema": "[["}, 422, 42201),
    ("GET", "/no/such/route", None, 404, 404),
    ("PATCH", "/subjects", None, 405, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS)
def test_error_codes(
    registry_url: str,
    new_subject: NewSubject,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: int,
) -> None:
    known = new_subject("known")
    assert register(registry_url, known, V1).status_code == 200
    new = new_subject("new")
    target = path.format(known=known, unknown=new_subject("unknown"), new=new)
    response = call(method, registry_url, target, body)
    assert (response.status_code, error_code(response)) == (status, code), response.text
    assert isinstance(response.json()["message"], str)
    assert new not in call("GET", registry_url, "/subjects", deleted="true").json()


def test_malformed_json_body(registry_url: str, new_subject: NewSubject) -> None:
    subject = new_subject("malformed")
    for raw in (b"{bad json", b"", b"\xff\xfe", b"[" * 100_000):
        response = requests.post(
            f"{registry_url}/subjects/{subject}/versions",
            data=raw,
            headers={"Content-Type": MEDIA_TYPE},
            timeout=10,
        )
        assert response.status_code == 400, response.text
        assert error_code(response) == 400
    assert subject not in call("GET", registry_url, "/subjects", deleted="true").json()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json; charset=utf-8",
    ],
)
def test_accepted_content_types(
    registry_url: str, new_subject: NewSubject, content_type: str
) -> None:
    response = requests.post(
        f"{registry_url}/subjects/{new_subject('ct')}/versions",
        data=json.dumps({"schema": V1}),
        headers={"Content-Type": content_type},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)


def test_foreign_content_type_is_refused(registry_url: str, new_subject: NewSubject) -> None:
    response = requests.post(
        f"{registry_url}/subjects/{new_subject('ct')}/versions",
        data=json.dumps({"schema": V1}),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert (response.status_code, error_code(response)) == (415, 415)


def test_invalid_avro_stores_nothing(registry_url: str, new_subject: NewSubject) -> None:
    subject = new_subject("invalid")
    before = call("GET", registry_url, "/subjects", deleted="true").json()
    response = register(registry_url, subject, '{"type": "record", "name": "R", "fields": 3}')
    assert (response.status_code, error_code(response)) == (422, 42201)
    after = call("GET", registry_url, "/subjects", deleted="true").json()
    assert after == before


def test_incompatible_registration_stores_nothing(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("nostore")
    client.register_schema(subject, avro(V1))
    refused = record(field("totally", "bytes"), name="Unrelated")
    assert register(registry_url, subject, refused).status_code == 409
    assert client.get_versions(subject, deleted=True) == [1]
    # The refused schema got no id: a lookup in any subject finds nothing.
    lookup = call("POST", registry_url, f"/subjects/{subject}", {"schema": refused})
    assert error_code(lookup) == 40403


def test_level_applies_per_subject(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("fwd")
    set_level(registry_url, subject, "FORWARD")
    client.register_schema(subject, avro(V1))
    # FORWARD: the old reader must read the new data; adding a field without default is fine.
    client.register_schema(subject, avro(V2_NO_DEFAULT))
    assert client.get_versions(subject) == [1, 2]


def _deep_record(depth: int) -> str:
    text = '"int"'
    for level in range(depth):
        text = f'{{"type":"record","name":"D{level}","fields":[{{"name":"f","type":{text}}}]}}'
    return text


def test_hostile_input_never_causes_a_server_error(
    registry_url: str, new_subject: NewSubject
) -> None:
    subject = new_subject("hostile")
    registered = register(registry_url, subject, V1)
    assert registered.status_code == 200
    subjects_before = call("GET", registry_url, "/subjects").json()
    config_before = call("GET", registry_url, f"/config/{subject}")
    bodies: list[Any] = [
        None,
        0,
        "x",
        [],
        {"schema": None},
        {"schema": []},
        {"schema": {"type": "int"}},
        {"schema": "null"},
        {"schema": '"nope"'},
        {"schema": V1, "schemaType": None},
        {"schema": V1, "schemaType": 7},
        {"schema": V1, "references": "x"},
        {"schema": _deep_record(150)},
        {"schema": _deep_record(400)},
        {"schema": "[" * 5000 + "]" * 5000},
        {"compatibility": None},
        {"schema": '{"type":"enum","name":"E","symbols":["A","A"]}'},
        {"schema": '{"type":"fixed","name":"F","size":-1}'},
        {"schema": '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}],"aliases":5}'},
    ]
    paths = [
        ("POST", f"/subjects/{subject}/versions"),
        ("POST", f"/subjects/{subject}"),
        ("POST", f"/compatibility/subjects/{subject}/versions/latest"),
        ("POST", f"/compatibility/subjects/{subject}/versions"),
        ("PUT", f"/config/{subject}"),
        ("PUT", "/config/%00%ff"),
        ("GET", "/subjects/%C3%A9t%C3%A9/versions/1"),
        ("GET", f"/subjects/{subject}/versions/1e3"),
        ("GET", "/schemas/ids/-1"),
        ("GET", "/schemas/ids/99999999999999999999999"),
        ("DELETE", "/subjects/%20/versions/latest"),
        ("GET", "/subjects?offset=x&limit=y"),
    ]
    for method, path in paths:
        for body in bodies:
            response = call(method, registry_url, path, body)
            assert response.status_code < 500, (method, path, body, response.text[:300])
            assert "error_code" in response.json() or response.status_code == 200
    # Whatever of that was accepted, the subject still has exactly its one version, unchanged,
    # its level was not changed, and no subject was created or deleted anywhere.
    assert call("GET", registry_url, f"/subjects/{subject}/versions").json() == [1]
    version = call("GET", registry_url, f"/subjects/{subject}/versions/1").json()
    assert (version["subject"], version["version"], version["id"]) == (
        subject,
        1,
        registered.json()["id"],
    )
    assert json.loads(version["schema"]) == json.loads(V1)
    config_after = call("GET", registry_url, f"/config/{subject}")
    assert (config_after.status_code, config_after.json()) == (
        config_before.status_code,
        config_before.json(),
    )
    assert call("GET", registry_url, "/subjects").json() == subjects_before


def test_schemas_by_prefix_in_one_request(
    client: SchemaRegistryClient, registry_url: str, new_subject: NewSubject
) -> None:
    prefix = new_subject("bulk") + "."
    a, b, gone = f"{prefix}a-value", f"{prefix}b-value", f"{prefix}c-value"
    outside = new_subject("bulk") + ".a-value"
    v1_id = client.register_schema(a, avro(V1))
    v2_id = client.register_schema(a, avro(V2))
    client.register_schema(b, avro(V1))
    client.register_schema(gone, avro(V1))
    client.register_schema(outside, avro(V1))
    client.delete_subject(gone)

    latest = call("GET", registry_url, "/schemas", subjectPrefix=prefix, latestOnly="true")
    assert latest.status_code == 200
    assert [(r["subject"], r["version"], r["id"]) for r in latest.json()] == [
        (a, 2, v2_id),
        (b, 1, v1_id),
    ]
    assert json.loads(latest.json()[0]["schema"]) == json.loads(V2)
    every = call("GET", registry_url, "/schemas", subjectPrefix=prefix).json()
    assert [(r["subject"], r["version"]) for r in every] == [(a, 1), (a, 2), (b, 1)]
    with_deleted = call("GET", registry_url, "/schemas", subjectPrefix=prefix, deleted="true")
    assert [(r["subject"], r["version"]) for r in with_deleted.json()] == [
        (a, 1),
        (a, 2),
        (b, 1),
        (gone, 1),
    ]
