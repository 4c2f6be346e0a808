"""An iSAMS-style MIS on loopback: OAuth2 + REST students, and the Batch XML API.

The package: ``protocol`` (paths, method names, the ``<Message>`` bodies, XML helpers),
``document`` (the school as the ``<iSAMS>`` document), ``app`` (HTTP: OAuth2, REST students,
the Batch endpoint, throttling, cache and faults).

OBSERVED in public sources (iSAMS developer docs and integrators' clients): the token endpoint, REST
``page``/``totalPages``/``totalCount``, the Batch URL with ``apiKey`` in the query, the
``<Filters>`` request, the ``<iSAMS>`` document, the ``<Message>`` error bodies (byte for byte
in the recorded examples' shape: an ``encoding="utf-16"`` declaration over ASCII bytes), the
24-hour response cache and per-key throttling. INFERRED (marked where they are built): the
``pageSize`` parameter, the present-code table, the ``RegistrationStatus`` extras
(``MinutesLate``, ``Comment``, ``LastUpdated``), the throttle response, and the whole
amendment audit resource (``Registration_GetRegistrationAudit``: no vendor documents one).

Routes:
  POST /auth/connect/token            form grant_type=client_credentials&client_id=&client_secret=
  GET  /api/students?page=&pageSize=  Bearer token; {"students": [...], "page", "totalPages",
                                      "totalCount"}; leavers included, with leavingDate
  POST /api/batch/1.0/xml.ashx?apiKey=KEY     <Filters> body → <iSAMS> document
       (GET with no body runs every method allocated to the key, as iSAMS does; OAuth keys:
       apiKey=<client id> with a Bearer token)

Registers are not served: iSAMS exposes no register-taking events (none is publicly documented).

RegistrationStatus rows: one per mark, at the school's register time for the session (local
time, no session flag); present marks (``/``, ``\\``, ``L``) by ``PresentCode`` id, the rest by
``Code``; a ``Registered = 0`` row for each pupil on roll on a past school session with no mark;
and, unless ``duplicate_rows=False``, repeated rows (an older superseded row before some marks,
an exact repeat after others). Edits through ``set_mark`` / ``delete_mark`` (or ``/_sim/marks``)
are added to the school's amendment records: amender "Simulator", position "Data manager", no
reason.

The Batch cache: answers are stored per (key, request body). With ``cache_seconds`` > 0 an
identical request within that time gets the stored answer (the vendor default is 86400,
``ISAMS_DEFAULT_CACHE_SECONDS``); the default 0 serves fresh data so that edits show at once.
Either way a window's RegistrationStatus rows are rendered once and reused while the school's
marks, pupils and day are unchanged (``IsamsData._status_rows``): the bytes are the same.

Vendor faults (``FaultInjector``): EMPTY_PERMISSION (a 200 with the data left out),
STALE_CACHE (the Batch answer cached before later changes), CHANGING_PAGES (a pupil moves to
the front of the listing between REST pages), MALFORMED (a bad date, an unknown code and a
missing key in one answer; what was corrupted is listed in ``corrupted``), EXPIRING_TOKENS (a
used token is rejected with 401), DEADLOCK (the recorded deadlock ``<Message>`` with 500).
"""

from registerwatch.simulator.isams.app import IsamsApp
from registerwatch.simulator.isams.protocol import (
    AUDIT,
    BATCH_PATH,
    DEADLOCK_DESCRIPTION,
    ISAMS_DEFAULT_CACHE_SECONDS,
    PRESENT_CODES,
    PUPILS,
    REGISTRATION_STATUS,
    STUDENTS_PATH,
    TERMS,
    TOKEN_PATH,
    Corruption,
    message_body,
)

__all__ = [
    "AUDIT",
    "BATCH_PATH",
    "DEADLOCK_DESCRIPTION",
    "ISAMS_DEFAULT_CACHE_SECONDS",
    "PRESENT_CODES",
    "PUPILS",
    "REGISTRATION_STATUS",
    "STUDENTS_PATH",
    "TERMS",
    "TOKEN_PATH",
    "Corruption",
    "IsamsApp",
    "message_body",
]
