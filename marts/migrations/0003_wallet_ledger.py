"""The wallet ledger's tables, and the index it reads a wallet's landed activity and positions by.

The landing table keeps rows as received (a `json` column); the ledger finds a wallet's rows by
`payload->>'proxy_wallet'` on the two account streams only, in landing order (`id`).
"""

import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        # Only the wallet and landing tables, both older than v2: a migration of ingest back and
        # forth (tests do) must not take these tables with it.
        ('ingest', '0003_dead_letter_payload_key'),
        ('marts', '0002_mart_fillfactor'),
    ]

    operations = [
        migrations.CreateModel(
            name='LedgerCursor',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stream', models.CharField(max_length=40, unique=True)),
                ('landing_id', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'ledger_cursor',
            },
        ),
        migrations.CreateModel(
            name='WalletLedgerSummary',
            fields=[
                ('wallet', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True, serialize=False, to='ingest.wallet')),
                ('computed_at', models.DateTimeField()),
                ('activity_through', models.BigIntegerField(default=0, help_text='newest landing id of the rows read')),
                ('entries', models.PositiveIntegerField(default=0)),
                ('fees_paid', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('maker_rebates', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('rewards', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('unknown_usdc', models.DecimalField(decimal_places=12, default=Decimal('0'), help_text='rows of unknown types: shown, not counted', max_digits=30)),
                ('unknown_types', models.JSONField(blank=True, default=list)),
                ('realized_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), help_text='Polymarket basis', max_digits=30)),
                ('settlement_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('unrealized_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cash_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('resolved_positions', models.PositiveIntegerField(default=0)),
                ('winning_positions', models.PositiveIntegerField(default=0)),
                ('unknown_cost_positions', models.PositiveIntegerField(default=0)),
                ('win_rate', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=24)),
                ('roi', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=24)),
                ('reconciliation_status', models.CharField(choices=[('reconciled', 'Reconciled'), ('drift', 'Drift'), ('unknown', 'Unknown')], default='unknown', max_length=10)),
                ('reconciliation_difference', models.DecimalField(decimal_places=12, default=Decimal('0'), help_text="ours − Polymarket's realised", max_digits=30)),
                ('reconciliation_size_difference', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('reconciliation_positions', models.PositiveIntegerField(default=0)),
                ('reconciliation_checked_at', models.DateTimeField(blank=True, null=True)),
                ('history_refetch_requested_at', models.DateTimeField(blank=True, help_text='when a drift or an unknown cost basis asked for the activity from start=1', null=True)),
            ],
            options={
                'db_table': 'wallet_ledger_summary',
                'indexes': [models.Index(fields=['reconciliation_status'], name='wallet_ledger_recon_status')],
            },
        ),
        migrations.CreateModel(
            name='WalletLedgerEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sequence', models.PositiveIntegerField()),
                ('leg', models.PositiveSmallIntegerField(default=0)),
                ('occurred_at', models.DateTimeField()),
                ('activity_type', models.CharField(help_text='as Polymarket sent it', max_length=40)),
                ('kind', models.CharField(max_length=16)),
                ('source_key', models.CharField(help_text='idempotency key of the landed activity row', max_length=64)),
                ('condition_id', models.CharField(blank=True, default='', max_length=66)),
                ('token_id', models.CharField(blank=True, default='', max_length=100)),
                ('shares', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cash', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('fee', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('price', models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True)),
                ('note', models.CharField(blank=True, default='', max_length=200)),
                ('wallet', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.wallet')),
            ],
            options={
                'db_table': 'wallet_ledger_entry',
                'constraints': [models.UniqueConstraint(fields=('wallet', 'sequence', 'leg'), name='wallet_ledger_entry_key')],
            },
        ),
        migrations.CreateModel(
            name='WalletLedgerPosition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token_id', models.CharField(max_length=100)),
                ('condition_id', models.CharField(blank=True, default='', max_length=66)),
                ('outcome_index', models.SmallIntegerField(blank=True, null=True)),
                ('status', models.CharField(max_length=8)),
                ('shares', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('avg_price', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('realized_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cash_avg_price', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cash_realized_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('fees_paid', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('bought_shares', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('invested', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('settlement_price', models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True)),
                ('settlement_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cash_settlement_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('mark_price', models.DecimalField(blank=True, decimal_places=12, max_digits=30, null=True)),
                ('unrealized_pnl', models.DecimalField(decimal_places=12, default=Decimal('0'), max_digits=30)),
                ('cost_basis_known', models.BooleanField(default=True)),
                ('movements', models.PositiveIntegerField(default=0)),
                ('first_at', models.DateTimeField(blank=True, null=True)),
                ('last_at', models.DateTimeField(blank=True, null=True)),
                ('wallet', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.wallet')),
            ],
            options={
                'db_table': 'wallet_ledger_position',
                'indexes': [models.Index(fields=['condition_id'], name='wallet_ledger_position_market')],
                'constraints': [models.UniqueConstraint(fields=('wallet', 'token_id'), name='wallet_ledger_position_key')],
            },
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS ingest_landing_account_wallet ON ingest_landing "
            "(stream, (payload->>'proxy_wallet'), id) WHERE source = 'data_api' AND stream IN ('activity', 'positions')",
            reverse_sql="DROP INDEX IF EXISTS ingest_landing_account_wallet",
        ),
    ]
