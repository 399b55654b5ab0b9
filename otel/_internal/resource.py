"""The OpenTelemetry resource: who is emitting, down to the worker process."""

from __future__ import annotations

import os
import platform
import socket
import sys
import uuid
import weakref

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource

from otel._internal.settings import Settings

_instance_id: str | None = None


def instance_id() -> str:
    """A ``service.instance.id`` unique to this process.

    It is regenerated in a forked child (gunicorn and ``uvicorn --workers`` fork or
    spawn workers), so two workers never report the same series identity.
    """
    global _instance_id
    if _instance_id is None:
        _instance_id = str(uuid.uuid4())
    return _instance_id


#: Resources built in this process, by identity (Resource hashes by value, and two
#: resources with equal attributes are still distinct objects held by distinct
#: providers). Updating them after a fork re-identifies every signal at once.
_built: weakref.WeakValueDictionary[int, Resource] = weakref.WeakValueDictionary()


def _after_fork_in_child() -> None:
    global _instance_id
    _instance_id = None
    # configure() should run in the worker (its lifespan). When it ran in a preloading
    # parent instead (gunicorn --preload), the worker would report the parent's identity
    # and its series would collide with its siblings'; give it its own.
    for resource in list(_built.values()):
        attrs = dict(resource.attributes)
        attrs["service.instance.id"] = instance_id()
        attrs["process.pid"] = os.getpid()
        resource._attributes = BoundedAttributes(attributes=attrs, immutable=True)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _sdk_version() -> str:
    from opentelemetry.sdk.version import __version__

    return __version__


def build_resource(
    settings: Settings, *, service_name: str | None = None, service_version: str | None = None
) -> Resource:
    """Build the resource for this process.

    Precedence, lowest first: our defaults, the ``service_name``/``service_version``
    arguments, ``OTEL_RESOURCE_ATTRIBUTES``, then ``OTEL_SERVICE_NAME``, as the spec
    orders them.

    Args:
        settings: Parsed settings.
        service_name: The service's own name, used when the environment gives none.
        service_version: The service's version, used when the environment gives none.
    """
    attrs: dict[str, str | int] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": _sdk_version(),
        "telemetry.distro.name": "trading-otel",
        "service.name": "unknown_service:" + os.path.basename(sys.executable),
        "service.namespace": settings.service_namespace,
        "deployment.environment.name": settings.environment,
        "service.instance.id": instance_id(),
        "host.name": socket.gethostname(),
        "host.arch": platform.machine(),
        "os.type": platform.system().lower(),
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.executable.name": os.path.basename(sys.executable),
    }
    if service_name:
        attrs["service.name"] = service_name
    if service_version:
        attrs["service.version"] = service_version
    attrs.update(settings.resource_attributes)
    if settings.service_name:
        attrs["service.name"] = settings.service_name
    resource = Resource(attrs)
    _built[id(resource)] = resource
    return resource
