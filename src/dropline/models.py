"""Imports every table so ``Base.metadata`` is complete (Alembic, tests). Importing it installs
nothing: the audit trail's listeners are installed by ``bootstrap.install_listeners``."""

from dropline.admin.models import AdminSession, AdminUser, ApiToken, RecoveryCode
from dropline.audit.models import AuditLog
from dropline.carts.models import Cart, CartLine
from dropline.catalog.models import Product, ProductFamily, StockAdjustment, Variant
from dropline.console.models import PlaybookSnapshot
from dropline.customers.models import Customer, CustomerSession, PasswordReset
from dropline.db import Base
from dropline.discounts.models import DiscountCode, DiscountRedemption
from dropline.drops.models import (
    Drop,
    DropBuyer,
    DropHold,
    DropQueueEntry,
    DropSlot,
    DropVariant,
    DropWaitlistEntry,
)
from dropline.events.models import DomainEvent
from dropline.fulfilment.models import (
    CarrierRateRow,
    DeliveryWindow,
    FulfilmentDecisionRow,
    FulfilmentRuleRow,
    FulfilmentSite,
    RoutePlanRow,
    RouteRow,
    RouteStopRow,
    StockMovement,
    Vehicle,
    WindowBooking,
    WindowTemplate,
)
from dropline.idempotency.models import IdempotencyRecord
from dropline.invoices.models import CreditNote, DocumentCounter, Invoice
from dropline.locations.models import Location, StockLevel
from dropline.media.models import MediaAsset
from dropline.memberships.models import (
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
    MembershipSetting,
    MembershipTier,
    OnboardingProgress,
    Poll,
    PollVote,
    WaitlistEntry,
)
from dropline.notifications.models import MailOutboxItem, MarketingOptOut
from dropline.notes.models import StaffNote
from dropline.orders.models import Order, OrderLine, Shipment, ShipmentLine
from dropline.payments.models import LocalProviderCharge, Payment, Refund
from dropline.popups.models import (
    Experiment,
    ExperimentObservation,
    Popup,
    PopupCount,
    PopupSale,
)
from dropline.risk.models import (
    Chargeback,
    ReturnPolicy,
    ReturnRequest,
    RiskCase,
    RiskDecision,
    RiskSetting,
    SerialUnit,
)
from dropline.tax.models import ProductTaxClass, TaxRate
from dropline.webhooks.models import WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "AdminSession",
    "AdminUser",
    "ApiToken",
    "AuditLog",
    "CarrierRateRow",
    "Cart",
    "CartLine",
    "Chargeback",
    "CreditNote",
    "Customer",
    "CustomerSession",
    "DeliveryWindow",
    "DiscountCode",
    "DocumentCounter",
    "DiscountRedemption",
    "DomainEvent",
    "Drop",
    "DropBuyer",
    "DropHold",
    "DropQueueEntry",
    "DropSlot",
    "DropVariant",
    "DropWaitlistEntry",
    "Experiment",
    "ExperimentObservation",
    "FulfilmentDecisionRow",
    "FulfilmentRuleRow",
    "FulfilmentSite",
    "IdempotencyRecord",
    "Invoice",
    "LocalProviderCharge",
    "Location",
    "MailOutboxItem",
    "StaffNote",
    "MarketingOptOut",
    "MediaAsset",
    "Membership",
    "MembershipCharge",
    "MembershipPaymentMethod",
    "MembershipSetting",
    "MembershipTier",
    "OnboardingProgress",
    "Order",
    "OrderLine",
    "PasswordReset",
    "Payment",
    "PlaybookSnapshot",
    "Poll",
    "PollVote",
    "Popup",
    "PopupCount",
    "PopupSale",
    "ProductTaxClass",
    "Product",
    "ProductFamily",
    "RecoveryCode",
    "Refund",
    "ReturnPolicy",
    "ReturnRequest",
    "RiskCase",
    "RiskDecision",
    "RiskSetting",
    "RoutePlanRow",
    "RouteRow",
    "RouteStopRow",
    "SerialUnit",
    "StockAdjustment",
    "Shipment",
    "ShipmentLine",
    "StockLevel",
    "StockMovement",
    "TaxRate",
    "Variant",
    "Vehicle",
    "WaitlistEntry",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WindowBooking",
    "WindowTemplate",
    "metadata",
]
