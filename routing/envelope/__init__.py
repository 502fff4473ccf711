"""Envelopes: CloudEvents 1.0 events in structured JSON mode, as frozen values.

`encode` writes one as UTF-8 JSON; `decode` reads it back, and also reads a plain JSON body
from a producer that knows nothing of envelopes (the event type then comes from the queue,
the AMQP `type` property or a `ce-type` header). `to_properties` maps an envelope onto AMQP
properties. `decode_or_reject` is the consumer's policy: an envelope, or the reason to
dead-letter the message, and never an exception. JSON only: no pickle, eval or YAML.

One module per concern, each importing only those before it:
`_value` (the `Envelope`, its attribute rules, the one builder of a fresh event),
`_amqp_mapping` (AMQP properties and `ce-` headers), `_codec` (JSON bodies),
`_policy` (what a consumer does with a body it cannot use).
"""

from routing._json import parse_json
from routing.envelope._amqp_mapping import (
    CONTENT_TYPE,
    HEADER_PREFIX,
    amqp_timestamp,
    body_id,
    document_properties,
    to_properties,
)
from routing.envelope._codec import MAX_BYTES, build_envelope, decode, encode, encode_document
from routing.envelope._policy import ERROR_HEADER, ERROR_PATH_HEADER, Rejection, decode_or_reject
from routing.envelope._value import (
    ATTRIBUTES,
    DEFAULT_SOURCE,
    JSON_TYPE,
    OPTIONAL,
    RESERVED,
    SPECVERSION,
    Envelope,
    new_document,
)

__all__ = [
    "ATTRIBUTES",
    "CONTENT_TYPE",
    "DEFAULT_SOURCE",
    "ERROR_HEADER",
    "ERROR_PATH_HEADER",
    "HEADER_PREFIX",
    "JSON_TYPE",
    "MAX_BYTES",
    "OPTIONAL",
    "RESERVED",
    "SPECVERSION",
    "Envelope",
    "Rejection",
    "amqp_timestamp",
    "body_id",
    "build_envelope",
    "decode",
    "decode_or_reject",
    "document_properties",
    "encode",
    "encode_document",
    "new_document",
    "parse_json",
    "to_properties",
]
