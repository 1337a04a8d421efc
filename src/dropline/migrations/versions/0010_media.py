"""media: product, variant, drop and tier images

Revision ID: 0010_media
Revises: 0001
Create Date: 2026-12-07 14:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = '0010_media'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('media',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'media_assets',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('owner_kind', sa.Enum('product', 'variant', 'drop', 'tier', name='mediaowner',
                                        native_enum=False, length=16), nullable=False),
        sa.Column('owner_id', sa.BigInteger(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('alt', sa.String(length=300), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('placeholder', sa.Text(), nullable=False),
        sa.Column('renditions', sa.JSON(), nullable=False),
        sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_media_assets')),
    )
    op.create_index('ix_media_assets_owner', 'media_assets',
                    ['owner_kind', 'owner_id', 'position'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_media_assets_owner', table_name='media_assets')
    op.drop_table('media_assets')
