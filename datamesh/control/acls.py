"""Kafka ACLs: each processor's and sink's principal reads exactly its inputs, nothing more.

A processor or sink authenticates as ``User:<domain>.<product>`` (:func:`names.principal`) and is
granted ``READ`` on each input's topic and on its consumer group (:func:`names.consumer_group`).
Kafka's ``READ`` implies ``DESCRIBE``, so that is all a consumer needs to fetch metadata,
consume and commit offsets. Writing its output is not part of these grants.

- :func:`desired_acls` (pure): the grants the declarations call for;
- :func:`plan_acls` (pure): desired against observed → ``create`` for a missing grant and
  ``drift`` (gate ``repair``: apply deletes it) for a grant a platform principal holds that its
  declaration does not call for; grants of other principals are not the platform's business;
- :func:`observe_acls` / :func:`apply_acl`: the admin API calls; observed None when the
  cluster has no authorizer (nothing to plan then).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
)

from datamesh import names
from datamesh.control.actions import Action
from datamesh.errors import TerminalError, TransientError
from datamesh.kafka_admin import QUIET, kafka_error
from datamesh.specs.product import DataProduct

TIMEOUT_S = 15.0
AUTHORIZER_CONFIG = "authorizer.class.name"  # a broker setting, empty without one


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL binding, in the admin API's terms (enum names, upper case).

    ``resource`` is ``TOPIC`` or ``GROUP`` for the platform's grants (observed ones may name any
    resource type); ``pattern`` ``LITERAL`` means ``name`` is matched exactly.
    """

    principal: str
    resource: str
    name: str
    operation: str = "READ"
    permission: str = "ALLOW"
    pattern: str = "LITERAL"
    host: str = "*"

    def describe(self) -> str:
        """``User:studio.movie_catalog READ topic studio.public.movies``."""
        deny = "" if self.permission == "ALLOW" else f"{self.permission} "
        pattern = "" if self.pattern == "LITERAL" else f" ({self.pattern.lower()})"
        host = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {deny}{self.operation} {self.resource.lower()} "
            f"{self.name}{pattern}{host}"
        )

    def to_json(self) -> dict[str, str]:
        """Plain JSON form (an action's ``params``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grant:
        """Inverse of :meth:`to_json`."""
        return cls(**{k: str(v) for k, v in data.items()})


def reads_inputs(product: DataProduct) -> bool:
    """True for the products whose principal reads inputs: processors and sinks still declared."""
    return not product.retired and (product.kind == "processor" or product.is_sink)


def platform_principals(products: Iterable[DataProduct]) -> frozenset[str]:
    """Principals the platform manages: every processor's and sink's, retired ones included (a
    retired product's leftover grants are drift)."""
    return frozenset(names.principal(p.id) for p in products if p.kind == "processor" or p.is_sink)


def desired_acls(products: Iterable[DataProduct]) -> frozenset[Grant]:
    """``READ`` on each input topic and on the consumer group, per processor and sink.

    ``products`` must hold every input of the processors and sinks among them (the loader
    guarantees it for a whole declaration set).
    """
    items = list(products)
    by_id = {p.id: p for p in items}
    grants: set[Grant] = set()
    for p in filter(reads_inputs, items):
        who = names.principal(p.id)
        grants.add(Grant(who, "GROUP", names.consumer_group(p)))
        for ref in p.inputs:
            if ref not in by_id:
                raise ValueError(f"{p.id} reads {ref}, which is not among the products given")
            grants.add(Grant(who, "TOPIC", names.topic(by_id[ref])))
    return frozenset(grants)


def plan_acls(
    desired: frozenset[Grant],
    observed: frozenset[Grant] | None,
    principals: frozenset[str] | None = None,
) -> list[Action]:
    """Actions that bring ``observed`` to ``desired``, by product, creations before drift.

    ``observed`` None means the cluster has no authorizer: no actions. A desired grant not
    observed → ``create``; an observed grant of a platform principal (one of ``principals``,
    by default those ``desired`` names; pass :func:`platform_principals` to include products
    without grants, such as retired ones) not desired → ``drift`` gated on ``repair``.
    """
    if observed is None:
        return []
    managed = principals if principals is not None else {g.principal for g in desired}
    actions = [_create(g) for g in desired - observed]
    actions += [_drift(g) for g in observed - desired if g.principal in managed]
    return sorted(actions, key=lambda a: (a.product, a.verb, a.name))


def _product_of(grant: Grant) -> str:
    return names.principal_product(grant.principal) or grant.principal


def _create(grant: Grant) -> Action:
    return Action(
        product=_product_of(grant),
        resource="acl",
        name=grant.describe(),
        verb="create",
        detail=f"grant {grant.operation} on {grant.resource.lower()} {grant.name} to "
        f"{grant.principal} (an input it reads)",
        params=grant.to_json(),
    )


def _drift(grant: Grant) -> Action:
    return Action(
        product=_product_of(grant),
        resource="acl",
        name=grant.describe(),
        verb="drift",
        detail=f"{grant.principal} holds an ACL its declaration does not call for "
        f"(added out of band?); repair deletes it",
        params=grant.to_json(),
        gate="repair",
    )


def to_binding(grant: Grant) -> AclBinding:
    """The admin API's binding of ``grant``."""
    return AclBinding(
        ResourceType[grant.resource],
        grant.name,
        ResourcePatternType[grant.pattern],
        grant.principal,
        grant.host,
        AclOperation[grant.operation],
        AclPermissionType[grant.permission],
    )


def to_filter(grant: Grant) -> AclBindingFilter:
    """A filter matching exactly ``grant`` (what ``delete_acls`` takes)."""
    return AclBindingFilter(
        ResourceType[grant.resource],
        grant.name,
        ResourcePatternType[grant.pattern],
        grant.principal,
        grant.host,
        AclOperation[grant.operation],
        AclPermissionType[grant.permission],
    )


def _name(value: Enum | str | int) -> str:
    # the binding converts its arguments to enums on construction; the hints keep the inputs
    if not isinstance(value, Enum):
        raise TypeError(f"expected an enum from the admin API, got {value!r}")
    return value.name


def from_binding(binding: AclBinding) -> Grant:
    """The :class:`Grant` of an observed binding."""
    return Grant(
        principal=binding.principal,
        resource=_name(binding.restype),
        name=binding.name,
        operation=_name(binding.operation),
        permission=_name(binding.permission_type),
        pattern=_name(binding.resource_pattern_type),
        host=binding.host,
    )


_ANY: Any = None  # a filter's None matches any name, principal or host (its hints say str)
_EVERY_ACL = AclBindingFilter(
    ResourceType.ANY,
    _ANY,
    ResourcePatternType.ANY,
    _ANY,
    _ANY,
    AclOperation.ANY,
    AclPermissionType.ANY,
)


def observe_acls(client_config: Mapping[str, Any]) -> frozenset[Grant] | None:
    """Every ACL on the cluster, or None when its brokers have no authorizer.

    Whether there is one is read from a broker's ``authorizer.class.name`` (describe configs):
    without an authorizer Kafka answers ``DescribeAcls`` with ``SECURITY_DISABLED``, but
    confluent-kafka 2.16 drops that error and returns no ACLs, which would plan every grant.
    Raises TransientError / TerminalError (e.g. the platform's user may not describe ACLs).
    """
    admin = AdminClient({**QUIET, **client_config})
    try:
        if not _has_authorizer(admin):
            return None
        bindings = admin.describe_acls(_EVERY_ACL, request_timeout=TIMEOUT_S).result()
    except KafkaException as exc:
        raise kafka_error("describe ACLs", exc) from exc
    return frozenset(from_binding(b) for b in bindings)


def _has_authorizer(admin: AdminClient) -> bool:
    brokers = admin.list_topics(timeout=TIMEOUT_S).brokers
    if not brokers:
        raise TransientError("describe ACLs: the cluster lists no broker", fix="retry")
    broker = ConfigResource(ResourceType.BROKER, str(min(brokers)))
    configs = admin.describe_configs([broker], request_timeout=TIMEOUT_S)[broker].result()
    entry = configs.get(AUTHORIZER_CONFIG)
    return bool(entry is not None and entry.value)


def apply_acl(action: Action, client_config: Mapping[str, Any]) -> None:
    """Carry out one ACL action: ``create`` adds the grant ("already exists" is success: Kafka
    accepts a duplicate binding), ``drift`` deletes exactly that binding (a repair: the caller
    checks the ``repair`` gate). Other verbs are a programming error."""
    grant = Grant.from_json(action.params)
    admin = AdminClient({**QUIET, **client_config})
    try:
        if action.verb == "create":
            created = admin.create_acls([to_binding(grant)], request_timeout=TIMEOUT_S)
            for future in created.values():
                future.result()
        elif action.verb == "drift":
            deleted = admin.delete_acls([to_filter(grant)], request_timeout=TIMEOUT_S)
            for future in deleted.values():
                future.result()  # deleting an ACL that is already gone deletes nothing
        else:
            raise TerminalError(
                f"an ACL action cannot be {action.verb!r}: {action.describe()}",
                fix="plan_acls makes only create and drift actions",
            )
    except KafkaException as exc:
        raise kafka_error(f"{action.verb} ACL {grant.describe()}", exc) from exc
