"""Built-in step: the demo admin user and one all-scopes API token (through the admin service)."""

from __future__ import annotations

from sqlalchemy import select

from dropline.admin.models import AdminUser
from dropline.admin.service import ALL_SCOPES, create_admin_user, issue_token
from dropline.demo.steps import DemoContext, demo_step

ADMIN_EMAIL = "admin@dropline.example"
# A demo shop's published password: fine for a laptop, never for a real shop.
ADMIN_PASSWORD = "ember-and-fig-demo"
TOKEN_NAME = "demo (all scopes)"


@demo_step("admin", order=300, label="Admin user and API token")
def seed_admin(ctx: DemoContext) -> str:
    user = ctx.session.scalar(select(AdminUser).where(AdminUser.email == ADMIN_EMAIL))
    if user is None:
        user = create_admin_user(ctx.session, clock=ctx.clock, email=ADMIN_EMAIL,
                                 password=ADMIN_PASSWORD, name="Demo admin")
        ctx.summary["admin login"] = f"{ADMIN_EMAIL} / {ADMIN_PASSWORD}"
    else:  # created earlier by hand (`dropline admin create-user`): its password is theirs
        ctx.summary["admin login"] = f"{ADMIN_EMAIL} (existed already; password unchanged)"
    ctx.ids.admin_user_id = user.id
    issued = issue_token(ctx.session, clock=ctx.clock, name=TOKEN_NAME, scopes=[ALL_SCOPES],
                         admin_user_id=user.id)
    # Keys stay short: the CLI prints a table, and at 80 columns a longer key would leave the
    # token's column too narrow for it (Rich cuts a long word with an ellipsis).
    ctx.summary["api token"] = issued.secret
    ctx.summary["token scope"] = "* (everything)"
    return f"admin {ADMIN_EMAIL}, token {issued.token.prefix}"
