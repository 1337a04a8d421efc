"""The risk domain's API token scopes, added to the shared scope list when imported (the
same pattern as console NAV entries), so ``dropline admin token --scope`` knows them."""

from dropline.admin.service import SCOPES

SCOPES.setdefault("returns:manage", "receive, approve, deny and refund returns; serials; "
                                    "chargebacks; return policies")
SCOPES.setdefault("risk:review", "read the risk review queue and customer scores, decide cases,"
                                 " change risk settings")
SCOPES.setdefault("audit:read", "read and export the audit log")
