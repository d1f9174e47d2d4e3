"""Every model, imported in one place so Alembic and tests see the whole schema."""

from referrals.accounts.models import (
    EnrolmentToken,
    KeptForm,
    PendingSignIn,
    Team,
    TrustedDevice,
    Unit,
    User,
    UserSession,
)
from referrals.aftercare.models import Child, Milestone
from referrals.audit.models import AuditRecord
from referrals.casework.models import (
    DashboardSnapshot,
    Referral,
    ReferralAgency,
    ReferralEvent,
)
from referrals.database import Base
from referrals.feedback.models import Feedback
from referrals.handling.models import HandlingConsent
from referrals.health.models import QueueProbe
from referrals.intake.models import (
    Agency,
    AgencyKey,
    ApiToken,
    Attachment,
    IntakeKey,
    Tip,
    TipCiphertext,
    TipSelector,
    WebFormKey,
)
from referrals.messages.models import Message
from referrals.onward.models import Correspondent, OnwardPackage, ReceivedFeedback
from referrals.operations.models import Operation, OperationPartnerUnit
from referrals.triage.models import SelectorValue, TipLink, TriageRuleSet

__all__ = [
    "EnrolmentToken",
    "Feedback",
    "HandlingConsent",
    "KeptForm",
    "PendingSignIn",
    "Team",
    "TrustedDevice",
    "Unit",
    "User",
    "UserSession",
    "Agency",
    "AgencyKey",
    "ApiToken",
    "Attachment",
    "AuditRecord",
    "Base",
    "IntakeKey",
    "QueueProbe",
    "Tip",
    "TipCiphertext",
    "TipSelector",
    "WebFormKey",
    "SelectorValue",
    "TipLink",
    "TriageRuleSet",
    "Referral",
    "ReferralEvent",
    "ReferralAgency",
    "DashboardSnapshot",
    "Message",
    "Correspondent",
    "OnwardPackage",
    "ReceivedFeedback",
    "Operation",
    "OperationPartnerUnit",
    "Child",
    "Milestone",
]
