"""The portal's built-in definitions: contact properties, their groups, lifecycle stages, deal stages.

Facts: hubspot.md §3 (Properties API, ``lifecyclestage`` options and order), §4.3 (contact
properties useful for scoring; names verified in real property lists), §4.4 (meetings and calls). Only the properties the
emulator fills or a connector may ask for are defined; HubSpot portals hold hundreds more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUILTIN_GROUPS",
    "DEAL_STAGES",
    "LIFECYCLE_STAGES",
    "PropertyDef",
    "CALL_STATUSES",
    "MEETING_OUTCOMES",
    "builtin_call_properties",
    "builtin_contact_properties",
    "builtin_deal_properties",
    "builtin_meeting_properties",
]

# hubspot.md §3: the 8 default internal values, in stage order (portals may customise them).
LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)

# Default sales pipeline stages (internal ids as HubSpot ships them); closedwon = an outcome.
DEAL_STAGES: tuple[tuple[str, str, str], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4"),
    ("presentationscheduled", "Presentation Scheduled", "0.6"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
    ("contractsent", "Contract Sent", "0.9"),
    ("closedwon", "Closed Won", "1.0"),
    ("closedlost", "Closed Lost", "0.0"),
)

# hubspot.md §4.4: hs_meeting_outcome (values unconfirmed there; the five every public integration
# reads) and hs_call_status (values unconfirmed; the ones HubSpot's calling tools log).
MEETING_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("SCHEDULED", "Scheduled"),
    ("COMPLETED", "Completed"),
    ("RESCHEDULED", "Rescheduled"),
    ("NO_SHOW", "No Show"),
    ("CANCELED", "Canceled"),
)
CALL_STATUSES: tuple[tuple[str, str], ...] = (
    ("BUSY", "Busy"),
    ("CALLING_CRM_USER", "Calling CRM user"),
    ("CANCELED", "Canceled"),
    ("COMPLETED", "Completed"),
    ("CONNECTING", "Connecting"),
    ("FAILED", "Failed"),
    ("IN_PROGRESS", "In progress"),
    ("NO_ANSWER", "No answer"),
    ("QUEUED", "Queued"),
    ("RINGING", "Ringing"),
)

BUILTIN_GROUPS: tuple[tuple[str, str], ...] = (
    ("contactinformation", "Contact information"),
    ("analyticsinformation", "Web analytics history"),
    ("emailinformation", "Email information"),
    ("conversioninformation", "Conversion information"),
    ("deal_information", "Deal information"),
)

FIELD_TYPES_BY_TYPE: dict[str, set[str]] = {
    # hubspot.md §3: type and fieldType values (SPEC PropertyCreate); which pairs HubSpot accepts.
    "string": {"text", "textarea", "html", "file", "phonenumber"},
    "number": {"number", "calculation_equation"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "datetime": {"date"},
    "date": {"date"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber"},
}


@dataclass
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    options: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    hubspot_defined: bool = True
    read_only_value: bool = False
    calculated: bool = False
    display_order: int = -1
    created_at: str = "2019-08-06T02:41:52.000Z"
    updated_at: str = "2019-08-06T02:41:52.000Z"
    number_display_hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.name == "email",
            "hidden": False,
            "formField": not self.read_only_value,
            "archived": False,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        if self.number_display_hint:
            body["numberDisplayHint"] = self.number_display_hint
        return body


def _options(pairs: tuple[tuple[str, str], ...] | tuple[tuple[str, str, str], ...]) -> list[dict[str, Any]]:
    return [
        {"label": pair[1], "value": pair[0], "displayOrder": i, "hidden": False, "description": ""}
        for i, pair in enumerate(pairs)
    ]


def _p(
    name: str, label: str, type_: str, field_type: str, group: str, *, ro: bool = False, **kw: Any
) -> PropertyDef:
    return PropertyDef(name, label, type_, field_type, group, read_only_value=ro, **kw)


def builtin_contact_properties() -> dict[str, PropertyDef]:
    ci, wa, em, cv = "contactinformation", "analyticsinformation", "emailinformation", "conversioninformation"
    defs = [
        _p("email", "Email", "string", "text", ci),
        _p("firstname", "First Name", "string", "text", ci),
        _p("lastname", "Last Name", "string", "text", ci),
        _p("jobtitle", "Job Title", "string", "text", ci),
        _p("company", "Company Name", "string", "text", ci),
        _p("industry", "Industry", "string", "text", ci),
        _p("numemployees", "Number of Employees", "string", "text", ci),
        _p("country", "Country/Region", "string", "text", ci),
        _p("hs_email_domain", "Email Domain", "string", "text", ci, ro=True, calculated=True),
        _p("hs_object_id", "Record ID", "number", "number", ci, ro=True),
        _p("createdate", "Create Date", "datetime", "date", ci, ro=True),
        _p("lastmodifieddate", "Last Modified Date", "datetime", "date", ci, ro=True),
        _p(
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            ci,
            options=_options(LIFECYCLE_STAGES),
        ),
        _p(
            "hs_lead_status",
            "Lead Status",
            "enumeration",
            "radio",
            ci,
            options=_options(
                (
                    ("NEW", "New"),
                    ("OPEN", "Open"),
                    ("IN_PROGRESS", "In Progress"),
                    ("OPEN_DEAL", "Open Deal"),
                    ("UNQUALIFIED", "Unqualified"),
                    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
                    ("CONNECTED", "Connected"),
                    ("BAD_TIMING", "Bad Timing"),
                )
            ),
        ),
        _p("hs_analytics_num_page_views", "Number of Pageviews", "number", "number", wa, ro=True),
        _p("hs_analytics_num_visits", "Number of Sessions", "number", "number", wa, ro=True),
        _p("hs_analytics_first_timestamp", "Time First Seen", "datetime", "date", wa, ro=True),
        _p("hs_analytics_last_timestamp", "Time Last Seen", "datetime", "date", wa, ro=True),
        _p("hs_analytics_first_visit_timestamp", "Time of First Session", "datetime", "date", wa, ro=True),
        _p("hs_analytics_last_visit_timestamp", "Time of Last Session", "datetime", "date", wa, ro=True),
        _p("hs_analytics_first_url", "First Page Seen", "string", "text", wa, ro=True),
        _p("hs_analytics_last_url", "Last Page Seen", "string", "text", wa, ro=True),
        _p("num_conversion_events", "Number of Form Submissions", "number", "number", cv, ro=True),
        _p(
            "num_unique_conversion_events",
            "Number of Unique Forms Submitted",
            "number",
            "number",
            cv,
            ro=True,
        ),
        _p("first_conversion_event_name", "First Conversion", "string", "text", cv, ro=True),
        _p("first_conversion_date", "First Conversion Date", "datetime", "date", cv, ro=True),
        _p("recent_conversion_event_name", "Recent Conversion", "string", "text", cv, ro=True),
        _p("recent_conversion_date", "Recent Conversion Date", "datetime", "date", cv, ro=True),
        _p("hs_email_delivered", "Marketing emails delivered", "number", "number", em, ro=True),
        _p("hs_email_open", "Marketing emails opened", "number", "number", em, ro=True),
        _p("hs_email_click", "Marketing emails clicked", "number", "number", em, ro=True),
        _p("hs_email_bounce", "Marketing emails bounced", "number", "number", em, ro=True),
        _p(
            "hs_email_optout",
            "Unsubscribed from all email",
            "enumeration",
            "booleancheckbox",
            em,
            ro=True,
            options=_options((("true", "Yes"), ("false", "No"))),
        ),
        _p("hs_email_last_open_date", "Last marketing email open date", "datetime", "date", em, ro=True),
        _p("hs_email_last_click_date", "Last marketing email click date", "datetime", "date", em, ro=True),
        _p("hs_email_last_send_date", "Last marketing email send date", "datetime", "date", em, ro=True),
        _p(
            "num_associated_deals",
            "Number of Associated Deals",
            "number",
            "number",
            "deal_information",
            ro=True,
        ),
    ]
    for stage, _ in LIFECYCLE_STAGES:
        defs.append(
            _p(f"hs_lifecyclestage_{stage}_date", f"Became a {stage} Date", "datetime", "date", ci, ro=True)
        )
    return {d.name: d for d in defs}


def builtin_deal_properties() -> dict[str, PropertyDef]:
    di = "deal_information"
    defs = [
        _p("dealname", "Deal Name", "string", "text", di),
        _p("amount", "Amount", "number", "number", di),
        _p("dealstage", "Deal Stage", "enumeration", "radio", di, options=_options(DEAL_STAGES)),
        _p(
            "pipeline",
            "Pipeline",
            "enumeration",
            "select",
            di,
            options=_options((("default", "Sales Pipeline"),)),
        ),
        _p("closedate", "Close Date", "datetime", "date", di),
        _p("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", di, ro=True, calculated=True),
        _p("hs_object_id", "Record ID", "number", "number", di, ro=True),
        _p("createdate", "Create Date", "datetime", "date", di, ro=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", di, ro=True),
    ]
    return {d.name: d for d in defs}


def _engagement_common(group: str) -> list[PropertyDef]:
    """hubspot.md §4.4: every engagement object has hs_timestamp, an owner, and the search
    defaults hs_createdate, hs_lastmodifieddate, hs_object_id."""
    return [
        _p("hs_timestamp", "Activity date", "datetime", "date", group),
        _p("hubspot_owner_id", "Activity assigned to", "enumeration", "select", group),
        _p("hs_object_id", "Record ID", "number", "number", group, ro=True),
        _p("hs_createdate", "Create Date", "datetime", "date", group, ro=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, ro=True),
    ]


def builtin_meeting_properties() -> dict[str, PropertyDef]:
    mi = "meeting_information"
    defs = _engagement_common(mi) + [
        _p("hs_meeting_title", "Meeting name", "string", "text", mi),
        _p("hs_meeting_body", "Meeting description", "string", "textarea", mi),
        _p("hs_meeting_start_time", "Start time", "datetime", "date", mi),
        _p("hs_meeting_end_time", "End time", "datetime", "date", mi),
        _p("hs_meeting_location", "Location", "string", "text", mi),
        _p(
            "hs_meeting_outcome",
            "Meeting outcome",
            "enumeration",
            "select",
            mi,
            options=_options(MEETING_OUTCOMES),
        ),
    ]
    return {d.name: d for d in defs}


def builtin_call_properties() -> dict[str, PropertyDef]:
    ci = "call_information"
    defs = _engagement_common(ci) + [
        _p("hs_call_title", "Call title", "string", "text", ci),
        _p("hs_call_body", "Call notes", "string", "textarea", ci),
        _p(
            "hs_call_direction",
            "Call direction",
            "enumeration",
            "select",
            ci,
            options=_options((("INBOUND", "Inbound"), ("OUTBOUND", "Outbound"))),
        ),
        _p("hs_call_duration", "Call duration", "number", "number", ci),
        _p("hs_call_status", "Call status", "enumeration", "select", ci, options=_options(CALL_STATUSES)),
        _p("hs_call_disposition", "Call outcome", "string", "text", ci),
    ]
    return {d.name: d for d in defs}
